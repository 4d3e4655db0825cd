/**
 * Import cycles between the folders of src/ (dependency-cruiser, `npm run lint`). A cycle between
 * folders means neither can be understood, tested or split off without the other. There are none
 * since src/ was split by process (src/driver, src/worker and what both share), and a new one is an
 * error. Imports of types only are not counted (`tsPreCompilationDeps: false`): they leave no trace
 * in the compiled code.
 * @type {import('dependency-cruiser').IConfiguration}
 */
export default {
  forbidden: [
    {
      name: 'no-folder-cycle',
      comment: 'src/ folders import each other in a cycle: move what both need to where both may import it',
      severity: 'error',
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
