// ESLint flat config: typescript-eslint's recommended rules, type-aware, with the promise rules
// (floating, misused, awaiting non-thenables) as errors. Formatting is Prettier's job.
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      'dist/',
      '.cache/',
      'docs/api/',
      'test-output/',
      '.venv/',
      '.sps-tmp/',
      'spark-warehouse/',
      'benchmarks/results/',
      'src/protocol/checks.generated.ts',
    ],
  },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: {
        projectService: {
          allowDefaultProject: [
            '*.js',
            'benchmarks/lib/*.mjs',
            'test/fixtures/*.mjs',
            'scripts/protocol-schema.ts',
            'scripts/*.mjs',
            'src/driver/dashboard/static/*.js',
          ],
          // The plain JS files above (loaded by Node as they are, outside tsconfig), a few more than the default 8.
          maximumDefaultProjectFileMatchCount_THIS_WILL_SLOW_DOWN_LINTING: 16,
        },
        tsconfigRootDir: import.meta.dirname,
      },
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['warn', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // The dashboard's page script runs in the browser.
    files: ['src/driver/dashboard/static/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: { document: 'readonly', location: 'readonly', WebSocket: 'readonly' },
    },
  },
);
