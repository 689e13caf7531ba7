/** Where a store writes what operators should know (Nest's `Logger` fits). One shape for every store. */
export interface StoreLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}
