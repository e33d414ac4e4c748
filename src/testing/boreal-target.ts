// The sqllogictest runner's default target: a real Boreal cluster (storage processes and a
// writer instance) on loopback.

import { SqlCluster } from './sql-cluster.js';

export async function startBoreal(): Promise<{ url: string; stop(): Promise<void> }> {
  const cluster = await SqlCluster.start({ cacheMb: 256 });
  return { url: cluster.url(), stop: () => cluster.destroy() };
}
