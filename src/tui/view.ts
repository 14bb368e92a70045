import blessed from 'blessed';
import { deviceName, SORT_KEYS, type DashboardModel, type DeviceState, type SortKey } from './model.js';
import { barChart, clockTime, compactCount, dateTime, formatDuration, SEVERITY_COLOR, statsSummary, statusCell } from './format.js';
import { sanitizeForTerminal } from '../events/sanitize.js';
import { displayWidth, safeText } from './text.js';

/**
 * The terminal dashboard: a header with the sensor's figures, the device table, the alert list,
 * a chart of messages per minute, and a detail view of one device. It draws the model on a
 * timer, not per event, so the cost of a redraw does not grow with the event rate.
 */

export interface DashboardOptions {
  model: DashboardModel;
  /** First header line: where the events come from ("replay story.pcap x10", "ws://host:port"). */
  source: string;
  /** Connection or replay state for the header ("live", "disconnected, retrying in 2 s"). */
  state?: () => string;
  /** Milliseconds between redraws. */
  refreshMs?: number;
  /** Called on q or Ctrl-C, after the screen was destroyed. */
  onQuit: () => void;
  /** Called on p with the new paused state. */
  onPause?: (paused: boolean) => void;
  /** A screen to draw on instead of the process's terminal (the benchmark passes one). */
  screen?: blessed.Widgets.Screen;
}

type Mode = 'main' | 'detail' | 'help' | 'filter';

const SORT_LABEL: Record<SortKey, string> = {
  status: 'status',
  messages: 'messages/h',
  'last-seen': 'last seen',
  name: 'name',
};

const HELP_TEXT = [
  '{bold}mailtap dashboard keys{/bold}',
  '',
  '  Up/Down, j/k     move the selection',
  '  PgUp/PgDn        move by a page',
  '  Enter            details of the selected device',
  '  Esc, Backspace   back from the details or this help',
  '  /                filter by name, vendor, MAC, IP or EHLO; empty clears',
  '  s                sort: status, messages/h, last seen, name',
  '  p                pause or resume the display',
  '  ?                this help',
  '  q, Ctrl-C        quit',
  '',
  'Times are UTC. MSG/H and RCPT/H count the last hour of capture time.',
  'Text from the network is shown with control characters as escapes (\\x1b).',
].join('\n');

export class Dashboard {
  readonly screen: blessed.Widgets.Screen;
  private readonly model: DashboardModel;
  private readonly options: DashboardOptions;
  private readonly header: blessed.Widgets.BoxElement;
  private readonly devicesBox: blessed.Widgets.BoxElement;
  private readonly alertsBox: blessed.Widgets.BoxElement;
  private readonly chartBox: blessed.Widgets.BoxElement;
  private readonly footer: blessed.Widgets.BoxElement;
  private readonly detailBox: blessed.Widgets.BoxElement;
  private readonly helpBox: blessed.Widgets.BoxElement;
  private readonly timer: NodeJS.Timeout | undefined;
  private mode: Mode = 'main';
  private selectedKey: string | undefined;
  private selectedIndex = 0;
  /** False until a key moves the selection: until then it stays on the top row as the order changes. */
  private userSelected = false;
  private scrollTop = 0;
  private pageRows = 10;
  private filter = '';
  private sort: SortKey = 'status';
  private paused = false;
  private drawnVersion = -1;
  private destroyed = false;

  constructor(options: DashboardOptions) {
    this.options = options;
    this.model = options.model;
    this.screen =
      options.screen ??
      blessed.screen({ smartCSR: true, fullUnicode: true, autoPadding: false, title: 'mailtap', warnings: false });
    const screen = this.screen;

    const box = (extra: blessed.Widgets.BoxOptions) =>
      blessed.box({ parent: screen, tags: true, wrap: false, ...extra });
    this.header = box({ top: 0, left: 0, width: '100%', height: 2, style: { fg: 'white', bg: 'blue' } });
    this.devicesBox = box({});
    this.alertsBox = box({});
    this.chartBox = box({});
    this.footer = box({ bottom: 0, left: 0, width: '100%', height: 1, style: { fg: 'black', bg: 'white' } });
    this.detailBox = box({ hidden: true, scrollable: true, alwaysScroll: true });
    this.helpBox = box({
      hidden: true,
      top: 'center',
      left: 'center',
      width: 76,
      height: HELP_TEXT.split('\n').length,
      content: HELP_TEXT,
      style: { fg: 'black', bg: 'white' },
    });

    this.bindKeys();
    screen.on('resize', () => {
      this.layout();
      this.draw(true);
    });
    this.layout();
    this.draw(true);
    if (options.screen === undefined) {
      this.timer = setInterval(() => this.draw(false), options.refreshMs ?? 250);
      // An exit from anywhere, an uncaught exception included, still restores the terminal.
      process.once('exit', this.destroyOnExit);
    }
  }

  /** Redraws now if the model changed since the last redraw (or when forced). */
  draw(force: boolean): void {
    if (this.destroyed) return;
    if (!force && (this.paused || this.model.version === this.drawnVersion) && this.mode !== 'filter') {
      // The header's state text can change without a model change (a reconnect countdown).
      this.drawHeader();
      this.screen.render();
      return;
    }

    this.drawnVersion = this.model.version;
    // The stacked layout sizes the device table by the number of devices.
    if (Math.min(this.model.devices.size, 1000) !== this.laidOutDevices) this.layout();

    this.drawHeader();
    const list = this.model.deviceList(this.filter, this.sort);
    this.drawDevices(list);
    this.drawAlerts();
    this.drawChart();
    this.drawFooter();
    if (this.mode === 'detail') this.drawDetail();
    this.screen.render();
  }

  private readonly destroyOnExit = (): void => this.destroy();

  /** Stops the timer and gives the terminal back: normal screen, cursor, no raw mode. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    process.off('exit', this.destroyOnExit);
    if (this.timer !== undefined) clearInterval(this.timer);
    this.screen.destroy();
  }

  private layout(): void {
    this.laidOutDevices = Math.min(this.model.devices.size, 1000);
    const width = Math.max(20, Number(this.screen.width));
    const height = Math.max(10, Number(this.screen.height));
    const chartRows = height >= 32 ? 3 : 1;
    const chartHeight = 2 * (chartRows + 1);
    const middleTop = 2;
    const middleHeight = Math.max(4, height - middleTop - 1 - chartHeight);

    if (width >= 160) {
      const alertsWidth = Math.floor(width * 0.4);
      place(this.devicesBox, middleTop, 0, width - alertsWidth - 1, middleHeight);
      place(this.alertsBox, middleTop, width - alertsWidth, alertsWidth, middleHeight);
    } else {
      // The device table takes the rows its devices need, up to 60 % of the middle, and the
      // alerts get the rest.
      const wanted = this.model.devices.size + 2;
      const devicesHeight = Math.max(Math.min(5, middleHeight - 2), Math.min(wanted, Math.ceil(middleHeight * 0.6)));
      place(this.devicesBox, middleTop, 0, width, devicesHeight);
      place(this.alertsBox, middleTop + devicesHeight, 0, width, middleHeight - devicesHeight);
    }

    place(this.chartBox, middleTop + middleHeight, 0, width, chartHeight);
    place(this.detailBox, middleTop, 0, width, height - middleTop - 1);
    this.pageRows = Math.max(1, Number(this.devicesBox.height) - 2);
  }

  private drawHeader(): void {
    const model = this.model;
    const stats = model.stats;
    const width = Number(this.screen.width);
    const state = this.options.state?.() ?? '';

    // Each line is built from parts in order of importance. Parts that do not fit are left out.
    const line1: HeaderPart[] = [{ text: 'mailtap', style: 'bold' }];
    if (stats !== undefined) line1.push({ text: `sensor ${stats.sensor}` }, { text: `up ${formatDuration(stats.uptimeSeconds)}` });
    if (state !== '') line1.push({ text: state, style: 'yellow-fg}{bold' });
    if (this.paused) line1.push({ text: ' PAUSED ', style: 'black-fg}{yellow-bg' });
    line1.push({ text: this.options.source });
    if (stats !== undefined && stats.sources.length > 0) line1.push({ text: `on ${stats.sources.join(', ')}`, cut: true });

    const line2: HeaderPart[] = [
      { text: statsSummary(stats) },
      { text: `devices ${compactCount(model.devices.size)}  alerts ${compactCount(model.alerts.size)}` },
      { text: `${dateTime(model.now)} UTC` },
    ];
    this.header.setContent(joinParts(line1, width) + '\n' + joinParts(line2, width));
  }

  private columns(width: number): { name: number; mac: boolean } {
    // STATUS 8, IP 15, MSG/H 6, RCPT/H 7, LAST SEEN 9, and the spaces between them.
    const fixed = 8 + 1 + 1 + 15 + 1 + 6 + 1 + 7 + 1 + 9;
    const mac = width - fixed - 18 >= 24;
    return { name: Math.max(8, width - fixed - (mac ? 18 : 0)), mac };
  }

  private drawDevices(list: DeviceState[]): void {
    const width = Number(this.devicesBox.width);
    const rows = Math.max(1, Number(this.devicesBox.height) - 2);
    this.pageRows = rows;
    // Keep the selection on the same device when the order changes.
    let index = this.selectedKey !== undefined && this.userSelected ? list.findIndex((d) => d.key === this.selectedKey) : -1;
    if (index < 0) index = Math.min(this.selectedIndex, list.length - 1);
    index = Math.max(0, index);
    this.selectedIndex = index;
    this.selectedKey = list[index]?.key;
    if (index < this.scrollTop) this.scrollTop = index;
    if (index >= this.scrollTop + rows) this.scrollTop = index - rows + 1;
    this.scrollTop = Math.max(0, Math.min(this.scrollTop, Math.max(0, list.length - rows)));

    const { name, mac } = this.columns(width);
    const filterText = this.filter !== '' ? `  filter "${safeText(this.filter, 20)}"` : '';
    const title =
      `{bold}Devices{/bold} ${list.length}${list.length !== this.model.devices.size ? ` of ${this.model.devices.size}` : ''}` +
      `  sort: ${SORT_LABEL[this.sort]}${filterText}`;
    const head =
      '{underline}' +
      'STATUS   ' +
      'DEVICE'.padEnd(name) +
      ' ' +
      (mac ? 'MAC'.padEnd(17) + ' ' : '') +
      'IP'.padEnd(15) +
      ' ' +
      ' MSG/H' +
      ' ' +
      ' RCPT/H' +
      ' ' +
      'LAST SEEN' +
      '{/underline}';

    const lines = [title, head];
    const now = this.model.now;
    for (let i = this.scrollTop; i < Math.min(list.length, this.scrollTop + rows); i++) {
      const device = list[i];
      const status = statusCell(device.severityRank, device.alerts.size, 8);
      const rest =
        ' ' +
        safeText(deviceName(device), name, true) +
        ' ' +
        (mac ? safeText(device.mac ?? '', 17, true) + ' ' : '') +
        safeText(device.ip ?? '', 15, true) +
        ' ' +
        compactCount(device.messagesPerMinute.total(now)).padStart(6) +
        ' ' +
        compactCount(device.recipientsPerMinute.total(now)).padStart(7) +
        ' ' +
        clockTime(device.lastSeen);
      // statusCell ends with {/}, which closes every tag, so the selected row opens inverse twice.
      lines.push(i === index && this.mode !== 'detail' ? `{inverse}${status}{inverse}${rest}{/inverse}` : status + rest);
    }

    if (list.length === 0) lines.push(this.filter !== '' ? '(no device matches the filter)' : '(no devices yet)');
    this.devicesBox.setContent(lines.join('\n'));
  }

  private drawAlerts(): void {
    const width = Number(this.alertsBox.width);
    const rows = Math.max(0, Number(this.alertsBox.height) - 1);
    const alerts = this.model.alertList();
    const lines = [`{bold}Alerts{/bold} ${alerts.length}, newest first`];
    for (const alert of alerts.slice(0, rows)) {
      const color = SEVERITY_COLOR[alert.severity];
      const count = `x${compactCount(alert.count)}`;
      const prefix = `${clockTime(alert.lastSeen)} ${alert.severity.toUpperCase().padEnd(8)} `;
      const rule = safeText(alert.rule, 20);
      const rest = width - prefix.length - rule.length - count.length - 2;
      lines.push(`{${color}}${prefix}{bold}${rule}{/bold} ${count}{/} ${safeText(alert.message, Math.max(0, rest))}`);
    }
    this.alertsBox.setContent(lines.join('\n'));
  }

  private drawChart(): void {
    const width = Number(this.chartBox.width);
    const rows = Number(this.chartBox.height) / 2 - 1;
    const now = this.model.now;
    const overall = this.model.messagesPerMinute.series(now);
    const device = this.selectedKey !== undefined ? this.model.devices.get(this.selectedKey) : undefined;
    const deviceSeries = device?.messagesPerMinute.series(now) ?? overall.map(() => 0);
    const lines = [
      `{bold}Messages per minute{/bold}, last 60 min, all devices (max ${Math.max(...overall)}, now ${overall.at(-1) ?? 0})`,
      ...barChart(overall, rows, width).map((line) => `{green-fg}${line}{/}`),
      `{bold}${device !== undefined ? safeText(deviceName(device), 40) : 'no device selected'}{/bold}` +
        ` (max ${Math.max(...deviceSeries)}, now ${deviceSeries.at(-1) ?? 0})`,
      ...barChart(deviceSeries, rows, width).map((line) => `{cyan-fg}${line}{/}`),
    ];
    this.chartBox.setContent(lines.join('\n'));
  }

  private drawFooter(): void {
    if (this.mode === 'filter') {
      const width = Number(this.footer.width);
      const hint = '  (Enter applies, Esc cancels)';
      const room = Math.max(4, width - 'filter: '.length - hint.length - 1);
      this.footer.setContent(`filter: ${safeText(this.filterDraft.slice(-room), room)}{inverse} {/inverse}${hint}`);
      return;
    }
    const keys =
      this.mode === 'detail'
        ? 'Esc back  Up/Down scroll  p pause  ? help  q quit'
        : 'Up/Down,j/k move  Enter details  / filter  s sort  p pause  ? help  q quit';
    this.footer.setContent(keys);
  }

  private drawDetail(): void {
    const device = this.selectedKey !== undefined ? this.model.devices.get(this.selectedKey) : undefined;
    const width = Number(this.detailBox.width);
    if (device === undefined) {
      this.detailBox.setContent('(the device is no longer kept)');
      return;
    }

    const now = this.model.now;
    const field = (name: string, value: string | undefined) =>
      value !== undefined && value !== '' ? `{bold}${name.padEnd(11)}{/bold}${safeText(value, width - 11)}` : undefined;
    const lines: string[] = [`{inverse}{bold}${safeText(` Device ${deviceName(device)}`, width, true)}{/}`];
    const info = [
      field('key', device.key),
      field('vendor', device.vendor),
      field('type', device.type),
      field('MAC', device.mac),
      field('IP', device.ip),
      field('EHLO', device.ehloNames.join(', ')),
      field('DHCP name', device.dhcpHostname),
      field('owner', device.owner),
      field(
        'counts',
        `${device.messages} messages, ${device.recipients} recipients, ${device.sessions} sessions without a transaction; ` +
          `last hour ${device.messagesPerMinute.total(now)} messages`,
      ),
      field('seen', `${dateTime(device.firstSeen)} to ${dateTime(device.lastSeen)} UTC`),
    ];
    for (const line of info) if (line !== undefined) lines.push(line);

    const alerts = this.model.alertsOf(device.key);
    lines.push('', `{bold}Alerts{/bold} ${alerts.length}`);
    for (const alert of alerts) {
      const head = `${clockTime(alert.lastSeen)} ${alert.severity.toUpperCase().padEnd(8)} ${alert.rule} x${alert.count} `;
      lines.push(`{${SEVERITY_COLOR[alert.severity]}}${safeText(head, width)}{/}${safeText(alert.message, Math.max(0, width - head.length))}`);
    }

    const transactions = device.transactions;
    lines.push('', `{bold}Recent messages{/bold} ${transactions.length} kept, newest first`);
    for (let i = transactions.length - 1; i >= 0; i--) {
      const tx = transactions[i];
      const time = clockTime(tx.time);
      if (tx.kind === 'session') {
        lines.push(
          `${time}  session EHLO ${safeText(tx.helo ?? '-', 40)} to ${safeText(tx.server ?? '-', 22)}${tx.tls ? ' TLS' : ''}`,
          `          ${safeText(tx.reply ?? '', width - 10)}`,
        );
        continue;
      }
      const recipients = tx.recipients.length > 0 ? tx.recipients.join(', ') : '-';
      lines.push(
        `${time}  ${safeText(tx.from ?? '<>', 32)} -> ${safeText(recipients, Math.max(8, width - 48))}`,
        `          {bold}${safeText(tx.subject ?? '(no subject)', Math.max(8, Math.floor((width - 10) * 0.45)))}{/bold}` +
          (tx.attachments.length > 0 ? `  [${safeText(tx.attachments.join(', '), Math.max(8, Math.floor((width - 10) * 0.25)))}]` : '') +
          `  ${safeText(tx.reply ?? '', Math.max(8, Math.floor((width - 10) * 0.25)))}`,
      );
    }
    this.detailBox.setContent(lines.join('\n'));
  }

  private bindKeys(): void {
    const screen = this.screen;
    screen.key(['q', 'C-c'], () => {
      if (this.mode === 'filter') return;
      this.destroy();
      this.options.onQuit();
    });

    screen.key(['up', 'k'], () => this.move(-1));
    screen.key(['down', 'j'], () => this.move(1));
    screen.key(['pageup'], () => this.move(-this.pageRows));
    screen.key(['pagedown'], () => this.move(this.pageRows));
    screen.key(['home', 'g'], () => this.move(-Infinity));
    screen.key(['end', 'S-g'], () => this.move(Infinity));

    screen.key(['enter'], () => {
      if (this.mode !== 'main' || this.selectedKey === undefined) return;
      this.mode = 'detail';
      this.detailBox.scrollTo(0);
      this.detailBox.show();
      this.draw(true);
    });
    screen.key(['escape', 'backspace', 'left', 'h'], () => {
      if (this.mode === 'detail' || this.mode === 'help') this.back();
    });
    screen.key(['?'], () => {
      if (this.mode === 'filter') return;
      if (this.mode === 'help') {
        this.back();
        return;
      }
      this.modeBeforeHelp = this.mode;
      this.mode = 'help';
      this.helpBox.show();
      this.helpBox.setFront();
      this.draw(true);
    });

    screen.key(['s'], () => {
      if (this.mode !== 'main') return;
      this.sort = SORT_KEYS[(SORT_KEYS.indexOf(this.sort) + 1) % SORT_KEYS.length];
      this.draw(true);
    });
    screen.key(['p'], () => {
      if (this.mode === 'filter') return;
      this.paused = !this.paused;
      this.options.onPause?.(this.paused);
      this.draw(true);
    });
    screen.key(['/'], () => {
      if (this.mode !== 'main') return;
      this.mode = 'filter';
      this.filterDraft = this.filter;
      this.drawFooter();
      this.screen.render();
    });
    // The filter line reads keys itself rather than through a blessed textbox, whose input
    // listener starts a tick late and loses keys that arrive with the "/" in one read.
    screen.on('keypress', (ch: string | undefined, key: { name?: string; ctrl?: boolean; full?: string }) => {
      if (this.mode !== 'filter') return;
      if (key.name === 'enter' || key.name === 'return') {
        this.applyFilter(this.filterDraft);
      } else if (key.name === 'escape') {
        this.applyFilter(this.filter);
      } else if (key.name === 'backspace') {
        this.filterDraft = this.filterDraft.slice(0, -1);
      } else if (key.ctrl === true && key.name === 'u') {
        this.filterDraft = '';
      } else if (ch !== undefined && ch.length === 1 && ch >= ' ' && ch !== '\x7f' && this.filterDraft.length < 64) {
        this.filterDraft += ch;
      }
      this.drawFooter();
      this.screen.render();
    });
  }

  private modeBeforeHelp: Mode = 'main';
  /** Text typed on the filter line, applied on Enter. */
  private filterDraft = '';

  private applyFilter(filter: string): void {
    this.filter = filter;
    // The Enter or Escape that closes the filter line also reaches the screen's key handlers
    // after this one. The mode stays "filter" until they have run, so Enter does not open details.
    setImmediate(() => {
      this.mode = 'main';
      this.draw(true);
    });
    this.selectedIndex = 0;
    this.selectedKey = undefined;
    this.userSelected = false;
  }

  /** Device count (capped at 1000) that the current layout was made for. */
  private laidOutDevices = -1;

  private back(): void {
    if (this.mode === 'help') {
      this.helpBox.hide();
      this.mode = this.modeBeforeHelp;
    } else if (this.mode === 'detail') {
      this.detailBox.hide();
      this.mode = 'main';
    }
    this.draw(true);
  }

  /** Moves the selection (or scrolls the detail view) by delta rows. ±Infinity goes to the first or last row. */
  private move(delta: number): void {
    if (this.mode === 'detail') {
      this.detailBox.scroll(Math.max(-1e6, Math.min(1e6, delta)));
      this.screen.render();
      return;
    }
    if (this.mode !== 'main') return;

    const list = this.model.deviceList(this.filter, this.sort);
    if (list.length === 0) return;

    const current = this.selectedKey !== undefined ? Math.max(0, list.findIndex((d) => d.key === this.selectedKey)) : 0;
    const next = Math.max(0, Math.min(list.length - 1, current + Math.max(-list.length, Math.min(list.length, delta))));
    this.selectedIndex = next;
    this.selectedKey = list[next].key;
    this.userSelected = true;
    this.draw(true);
  }
}

interface HeaderPart {
  text: string;
  /** blessed tags opened before the text and closed after it. */
  style?: string;
  /** Cut with an ellipsis to the space left instead of being left out. */
  cut?: boolean;
}

/** Joins parts with two spaces, within width columns. The texts may come from the wire. */
function joinParts(parts: HeaderPart[], width: number): string {
  let used = 0;
  let out = '';
  for (const part of parts) {
    const gap = used === 0 ? 0 : 2;
    const room = width - used - gap;
    const plain = safeText(part.text);
    const size = displayWidth(sanitizeForTerminal(part.text));
    if (size > room && !(part.cut === true && room >= 8)) continue;
    const text = size > room ? safeText(part.text, room) : plain;
    out += ' '.repeat(gap) + (part.style !== undefined ? `{${part.style}}${text}{/}` : text);
    used += gap + Math.min(size, room);
  }
  return out;
}

function place(element: blessed.Widgets.BoxElement, top: number, left: number, width: number, height: number): void {
  element.top = top;
  element.left = left;
  element.width = Math.max(1, width);
  element.height = Math.max(1, height);
}
