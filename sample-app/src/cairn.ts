// NOTE: the one place the sample reaches into this repository. A real app writes `from 'nestjs-cairn'` instead, and
// every other file of the sample imports from here, so it reads exactly like such an app.
export * from '../../src/index.js';
