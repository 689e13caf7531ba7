/** Metadata key of the `@Schedule` specs of a class (own metadata, in declaration order). */
export const SCHEDULES_METADATA = 'cairn:schedules';
