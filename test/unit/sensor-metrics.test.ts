import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { parseListenAddress } from '../../src/config/service.js';
import type { SensorStats } from '../../src/events/consumer.js';
import { startMetricsServer, type MetricsServer } from '../../src/sensor/metrics.js';
import { sampleStats } from './sensor-fixtures.js';

interface Reply {
  status: number;
  contentType: string;
  body: string;
}

function get(server: MetricsServer, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: server.address.host, port: server.address.port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Returns the sample lines of the exposition text as name{labels} -> value. */
function samples(body: string): Map<string, string> {
  const result = new Map<string, string>();
  for (const line of body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    result.set(line.slice(0, space), line.slice(space + 1));
  }
  return result;
}

describe('metrics endpoint', () => {
  let server: MetricsServer;
  let stats: SensorStats;
  let scrapes = 0;

  before(async () => {
    stats = sampleStats();
    server = await startMetricsServer({ host: '127.0.0.1', port: 0 }, () => {
      scrapes++;
      return stats;
    });
  });
  after(() => server.close());

  it('scrape returns the sensor figures', async () => {
    const reply = await get(server, '/metrics');
    assert.equal(reply.status, 200);
    const values = samples(reply.body);
    // Expected values are the fields of sampleStats, one sample per metric.
    assert.equal(values.get('mailtap_packets_total'), '123456');
    assert.equal(values.get('mailtap_bytes_total'), '98765432');
    assert.equal(values.get('mailtap_flows'), '17');
    assert.equal(values.get('mailtap_sessions_total'), '420');
    assert.equal(values.get('mailtap_transactions_total'), '398');
    assert.equal(values.get('mailtap_alerts_total'), '3');
    assert.equal(values.get('mailtap_capture_loss_ratio'), '0.0002');
    assert.equal(values.get('mailtap_capture_acked_unseen_bytes_total'), '1500');
    assert.equal(values.get('mailtap_interface_drops_total'), '4');
    assert.equal(values.get('mailtap_kernel_packets_total'), '812000');
    assert.equal(values.get('mailtap_kernel_drops_total'), '7');
    assert.equal(values.get('mailtap_kernel_counters_available'), '1');
    assert.equal(values.get('mailtap_uptime_seconds'), '3725');
    assert.equal(values.get('mailtap_packets_per_second'), '2000');
    assert.equal(values.get('mailtap_bits_per_second'), '16000000');
    assert.equal(values.get('mailtap_last_sequence'), '401');
    assert.equal(values.get('mailtap_sensor_info{sensor="office-1",version="0.1.0"}'), '1');
  });

  it('scrape is in the text format 0.0.4', async () => {
    const reply = await get(server, '/metrics');
    // Content type and HELP/TYPE lines as the Prometheus exposition format defines them.
    assert.equal(reply.contentType, 'text/plain; version=0.0.4; charset=utf-8');
    assert.match(reply.body, /^# HELP mailtap_packets_total Packets captured since the sensor started\.\n# TYPE mailtap_packets_total counter\nmailtap_packets_total 123456\n/m);
    assert.match(reply.body, /^# TYPE mailtap_flows gauge\nmailtap_flows 17\n/m);
    assert.match(reply.body, /^# TYPE mailtap_capture_loss_ratio gauge$/m);
    assert.ok(reply.body.endsWith('\n'));
  });

  it('scrape includes process metrics', async () => {
    const values = samples((await get(server, '/metrics')).body);
    assert.ok(Number(values.get('process_cpu_user_seconds_total')) > 0);
    assert.ok(Number(values.get('process_resident_memory_bytes')) > 1e6);
    assert.ok(values.has('nodejs_heap_size_used_bytes'));
  });

  it('each scrape reads new figures', async () => {
    const before = scrapes;
    stats = sampleStats({ packets: 200000, flows: 3 });
    const values = samples((await get(server, '/metrics')).body);
    assert.equal(scrapes, before + 1);
    assert.equal(values.get('mailtap_packets_total'), '200000');
    assert.equal(values.get('mailtap_flows'), '3');
    stats = sampleStats();
  });

  it('other path gives 404', async () => {
    const reply = await get(server, '/');
    assert.equal(reply.status, 404);
    assert.equal(reply.body, 'not found: the metrics are at /metrics\n');
  });

  it('POST gives 405', async () => {
    assert.equal((await get(server, '/metrics', 'POST')).status, 405);
  });
});

describe('metrics config', () => {
  it('metrics are off by default', () => {
    assert.equal(parseConfig('', 'x.yaml').metrics.listen, undefined);
  });

  it('listen address is parsed', () => {
    assert.deepEqual(parseConfig('metrics:\n  listen: 127.0.0.1:9187\n', 'x.yaml').metrics.listen, { host: '127.0.0.1', port: 9187 });
  });

  it('listen address forms', () => {
    assert.deepEqual(parseListenAddress('[::1]:9187'), { host: '::1', port: 9187 });
    assert.deepEqual(parseListenAddress('localhost:80'), { host: 'localhost', port: 80 });
    assert.equal(parseListenAddress('9187'), undefined);
    assert.equal(parseListenAddress('127.0.0.1:70000'), undefined);
    assert.equal(parseListenAddress('[zz]:1'), undefined);
    assert.equal(parseListenAddress('::1:9187'), undefined);
  });

  it('bad listen address names the key', () => {
    assert.throws(() => parseConfig('metrics:\n  listen: 9187\n', 'x.yaml'), {
      message: 'x.yaml:2:11: metrics.listen: expected HOST:PORT such as 127.0.0.1:9187 or [::1]:9187',
    });
    assert.throws(() => parseConfig('metrics:\n  listen: "any:port"\n', 'x.yaml'), {
      message: 'x.yaml:2:11: metrics.listen: expected HOST:PORT such as 127.0.0.1:9187 or [::1]:9187, got "any:port"',
    });
  });
});
