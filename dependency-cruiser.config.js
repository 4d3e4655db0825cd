/**
 * Import cycles between the folders of src/ (dependency-cruiser, `npm run lint`). A cycle between
 * folders means neither can be understood, tested or split off without the other. Existing cycles
 * are warnings until a restructuring moves the files that make them; new ones show up here too.
 * @type {import('dependency-cruiser').IConfiguration}
 */
export default {
  forbidden: [
    {
      name: 'no-folder-cycle',
      comment: 'src/ folders import each other in a cycle: move what both need to where both may import it',
      severity: 'warn',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    includeOnly: '^src/',
    tsPreCompilationDeps: false,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
