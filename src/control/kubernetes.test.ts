// deploy/kubernetes/ cannot run here (no Kubernetes cluster), so it is checked two ways:
// every object against the Kubernetes API's JSON schemas (kubernetes-models' validate()),
// and against what Boreal needs: six storage nodes, two per zone, pinned to their zone and
// spread over hosts; one peer list everywhere naming each node's stable DNS name; commands
// and flags that the `boreal` CLI has; Services that select pods and name their ports.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { BIN } from '../testing/fleet.js';

const DIR = fileURLToPath(new URL('../../../deploy/kubernetes/', import.meta.url));
const require = createRequire(import.meta.url);

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

function load(): Array<{ file: string; object: Manifest }> {
  const kustomization = parseAllDocuments(fs.readFileSync(path.join(DIR, 'kustomization.yaml'), 'utf8'))[0]!.toJS() as { resources: string[] };
  const listed = [...kustomization.resources].sort();
  const present = fs.readdirSync(DIR).filter((name) => name.endsWith('.yaml') && name !== 'kustomization.yaml').sort();
  assert.deepStrictEqual(listed, present, 'kustomization.yaml lists every manifest');
  return listed.flatMap((file) =>
    parseAllDocuments(fs.readFileSync(path.join(DIR, file), 'utf8')).map((document) => {
      assert.deepStrictEqual(document.errors, [], `${file} parses`);
      return { file, object: document.toJS() as Manifest };
    }),
  );
}

/** The kubernetes-models class for an object: kubernetes-models/<group>/<version>/<Kind>. */
function modelFor(object: Manifest): { validate(): void } {
  const [group, version] = object.apiVersion.includes('/') ? object.apiVersion.split('/') : ['', object.apiVersion];
  const module = require(`kubernetes-models/${group ? `${group}/` : ''}${version}/${object.kind}`) as Record<string, new (value: unknown) => { validate(): void }>;
  return new module[object.kind]!(object);
}

function containers(object: Manifest): any[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const pod = object.kind === 'Job' || object.kind === 'StatefulSet' || object.kind === 'Deployment' ? object.spec.template.spec : undefined;
  return pod?.containers ?? [];
}

test('deploy/kubernetes: valid Kubernetes objects that run what Boreal needs', () => {
  const objects = load();
  assert.ok(objects.length >= 10);
  for (const { file, object } of objects) {
    assert.doesNotThrow(() => modelFor(object).validate(), `${file}: ${object.kind} ${object.metadata.name} matches the API schema`);
    if (object.kind !== 'Namespace') assert.equal(object.metadata.namespace, 'boreal', `${object.kind} ${object.metadata.name} is in the boreal namespace`);
  }
  const invalid = modelFor({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'x' }, spec: { replicas: 'six', selector: {}, serviceName: 'x', template: {} } });
  assert.throws(() => invalid.validate(), 'the schema check can fail');

  // Storage: 3 StatefulSets, one per zone, 2 replicas each, spread over hosts.
  const storage = objects.map(({ object }) => object).filter((object) => object.kind === 'StatefulSet' && object.metadata.name.startsWith('boreal-storage-'));
  assert.equal(storage.length, 3);
  const zones = new Set<string>();
  const ids: number[] = [];
  const peerLists = new Set<string>();
  for (const set of storage) {
    assert.equal(set.spec.replicas, 2);
    assert.equal(set.spec.serviceName, 'boreal-storage');
    const term = set.spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0];
    assert.equal(term.key, 'topology.kubernetes.io/zone');
    zones.add(term.values[0]);
    const spread = set.spec.template.spec.topologySpreadConstraints as Array<{ topologyKey: string; whenUnsatisfiable: string }>;
    assert.ok(spread.some((constraint) => constraint.topologyKey === 'kubernetes.io/hostname' && constraint.whenUnsatisfiable === 'DoNotSchedule'));
    const script = containers(set)[0].args[0] as string;
    const base = Number(/--id \$\(\( (\d+) \+ \$\{HOSTNAME##\*-\} \)\)/.exec(script)?.[1]);
    assert.ok(Number.isInteger(base), script);
    assert.match(script, new RegExp(`--az ${term.values[0]} `));
    for (let ordinal = 0; ordinal < set.spec.replicas; ordinal++) ids.push(base + ordinal);
    peerLists.add(/--peers (\S+)/.exec(script)![1]!);
    assert.ok(set.spec.volumeClaimTemplates.length === 1, 'each node keeps its data on its own volume');
  }
  assert.equal(zones.size, 3, 'three zones');
  assert.deepStrictEqual(ids.sort(), [1, 2, 3, 4, 5, 6]);
  assert.equal(peerLists.size, 1, 'every node has the same peer list');
  const peers = [...peerLists][0]!;
  const expectedPeers = storage.flatMap((set) => {
    const base = Number(/--id \$\(\( (\d+) /.exec(containers(set)[0].args[0])![1]);
    return [0, 1].map((ordinal) => `${base + ordinal}=${set.metadata.name}-${ordinal}.boreal-storage.boreal.svc.cluster.local:7101`);
  });
  assert.deepStrictEqual(peers.split(',').sort(), expectedPeers.sort(), 'the peer list names each pod by its stable DNS name');

  // Every container runs a `boreal` command with flags that command has; the others use the same peers.
  const usage = execFileSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
  for (const { object } of objects) {
    for (const container of containers(object)) {
      const words: string[] = container.command?.[0] === '/bin/sh' ? (container.args[0] as string).replace(/^exec node bin\/boreal.js /, '').split(/\s+/) : container.args;
      assert.match(usage, new RegExp(`boreal ${words[0]} `), `${object.metadata.name}: boreal ${words[0]} exists`);
      for (const word of words.filter((candidate) => candidate.startsWith('--'))) assert.ok(usage.includes(word), `${object.metadata.name}: ${words[0]} takes ${word}`);
      const peerAt = words.indexOf('--peers');
      if (peerAt >= 0) assert.equal(words[peerAt + 1], peers, `${object.metadata.name} uses the same peer list`);
    }
  }

  // Services select pods that exist and name ports those pods have.
  const pods = objects.map(({ object }) => object).filter((object) => containers(object).length > 0);
  for (const service of objects.map(({ object }) => object).filter((object) => object.kind === 'Service')) {
    const matching = pods.filter((pod) => Object.entries(service.spec.selector as Record<string, string>).every(([key, value]) => pod.spec.template.metadata?.labels?.[key] === value));
    assert.ok(matching.length > 0, `Service ${service.metadata.name} selects pods`);
    for (const port of service.spec.ports as Array<{ port: number; targetPort?: number | string }>) {
      const target = port.targetPort ?? port.port;
      assert.ok(matching.some((pod) => containers(pod).some((container) => (container.ports ?? []).some((declared: { name?: string; containerPort: number }) => declared.name === target || declared.containerPort === target))), `Service ${service.metadata.name} port ${target} exists on its pods`);
    }
  }
});
