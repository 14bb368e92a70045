/** A node of a FlowList: the list links its members through these fields, without extra objects. */
export interface FlowListNode<T extends FlowListNode<T>> {
  prev: T | null;
  next: T | null;
  list: FlowList<T> | null;
}

/**
 * Doubly linked list ordered by last activity: the head is the least recently touched member.
 * Moving a member to the tail is O(1), so the flow table can touch a flow on every segment.
 */
export class FlowList<T extends FlowListNode<T>> {
  head: T | null = null;
  tail: T | null = null;
  size = 0;

  /** Appends `node`, first removing it from the list it is in. */
  append(node: T): void {
    if (node.list !== null) node.list.remove(node);
    node.list = this;
    node.prev = this.tail;
    node.next = null;
    if (this.tail === null) this.head = node;
    else this.tail.next = node;
    this.tail = node;
    this.size++;
  }

  /** Moves `node`, a member, to the tail. */
  touch(node: T): void {
    if (this.tail === node) return;
    this.remove(node);
    this.append(node);
  }

  remove(node: T): void {
    if (node.list !== this) return;
    if (node.prev === null) this.head = node.next;
    else node.prev.next = node.next;
    if (node.next === null) this.tail = node.prev;
    else node.next.prev = node.prev;
    node.prev = null;
    node.next = null;
    node.list = null;
    this.size--;
  }
}
