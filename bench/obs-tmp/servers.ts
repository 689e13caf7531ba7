// Temporary (obs-): a Postgres and a Redis server for the profiling runs; prints their URLs, stops on SIGTERM.
import { writeFileSync } from 'node:fs';
import { startPostgres } from '../../test/setup/postgres-server.js';
import { startRedis } from '../../test/setup/redis-server.js';
const pg = await startPostgres();
const redis = await startRedis();
writeFileSync('/tmp/obs-servers.env', `export DATABASE_URL=${pg.url}\nexport REDIS_URL=${redis.url}\n`);
console.log('ready');
process.on('SIGTERM', async () => { await pg.stop(); await redis.stop(); process.exit(0); });
setInterval(() => undefined, 1 << 30);
