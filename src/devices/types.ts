import type { Config } from '../config/schema.js';

/** The person or team to inform when a device misbehaves, from the config's device list. */
export interface Owner {
  name: string;
  email?: string;
  phone?: string;
}

export interface AddressHistory {
  ip: string;
  firstSeen: number;
  lastSeen: number;
}

/** Mail counters of one device, as a client of SMTP sessions. */
export interface DeviceCounters {
  sessions: number;
  /** Transactions whose message the server accepted (2xx after the body). */
  messages: number;
  /** Transactions of any outcome. */
  transactions: number;
  recipients: number;
  rejectedRecipients: number;
  /** Message bytes sent (body bytes of all transactions). */
  bytes: number;
}

/** One device of the inventory. */
export interface Device {
  /**
   * Stable key: "mac:aa:bb:cc:dd:ee:ff" for a device seen with its own MAC, "ip:10.1.2.3" for a
   * host behind a router (its frames carry the router's MAC) or seen without a MAC.
   */
  key: string;
  mac?: string;
  /** Organisation that owns the MAC's OUI, from the IEEE registry. */
  vendor?: string;
  /** IP addresses over time, most recent last; bounded. */
  ips: AddressHistory[];
  /** From the config's device list, when the device matches one by MAC or IP. */
  label?: string;
  type?: string;
  owner?: Owner;
  /** DHCP option 12 host name and option 60 vendor class, last seen. */
  dhcpHostname?: string;
  dhcpVendorClass?: string;
  /** EHLO/HELO names used, most recent last; bounded. */
  ehloNames: string[];
  firstSeen: number;
  lastSeen: number;
  /** First time the device was seen sending mail (a MAIL FROM), if ever. */
  firstMailSeen?: number;
  counters: DeviceCounters;
  /** True for a MAC that many IP addresses send from: a router, keyed separately. */
  isRouter: boolean;
}

/** Observations the inventory learns from besides SMTP; the decode stage makes them. */
export type { NeighborObservation } from '../decode/types.js';

export type InventoryConfig = Pick<Config, 'devices' | 'networks'>;
