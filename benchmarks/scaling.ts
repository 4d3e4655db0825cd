import { section, type BenchContext, type SectionResult } from './lib/types.js';
export default async function stub(_ctx: BenchContext): Promise<SectionResult> {
  return section('scaling', 'scaling', {});
}
