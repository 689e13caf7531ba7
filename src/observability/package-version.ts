/** The name this package gives its tracer and meter. */
export const PACKAGE_NAME = 'nestjs-cairn';

/**
 * The package's version, for its tracer and meter. A constant (no JSON import at run time); a unit test keeps it equal
 * to package.json's.
 */
export const PACKAGE_VERSION = '0.1.0';
