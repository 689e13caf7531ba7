/** Injection token of the {@link SampleAppConfig}. */
export const SAMPLE_APP_CONFIG = Symbol('SAMPLE_APP_CONFIG');
