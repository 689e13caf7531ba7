interface Servers {
  postgres?: { stop(): Promise<void> };
  redis?: { stop(): Promise<void> };
}

export default async function globalTeardown(): Promise<void> {
  const servers = (globalThis as { __cairnServers?: Servers }).__cairnServers;
  await Promise.allSettled([servers?.postgres?.stop(), servers?.redis?.stop()]);
}
