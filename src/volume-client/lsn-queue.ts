// A FIFO of LSNs with O(1) push and shift (CPL points waiting for the VCL to pass them).

import { assert, type Lsn } from '../common/index.js';

export class LsnQueue {
  private items: Lsn[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(lsn: Lsn): void {
    assert(this.size === 0 || this.items[this.items.length - 1]! < lsn, 'LSNs must be queued in increasing order');
    this.items.push(lsn);
  }

  first(): Lsn {
    assert(this.size > 0, 'first of an empty queue');
    return this.items[this.head]!;
  }

  shift(): Lsn {
    const lsn = this.first();
    this.head += 1;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return lsn;
  }
}
