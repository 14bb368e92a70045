/*
 * Two things the capture needs that the `cap` addon does not offer.
 *
 * readStats(fd) reads the kernel's counters of a Linux packet socket:
 * getsockopt(PACKET_STATISTICS).
 *
 * cap (libpcap) owns the capture socket and does not expose pcap_stats, so packets the kernel
 * drops when the socket's ring buffer is full would go unnoticed: the interface counters do not
 * include them. The sensor finds its capture socket's file descriptor in /proc/self/fd and reads
 * the counters here, with one system call that no npm library offers for a plain descriptor.
 *
 * The kernel resets both counters on every read, so the caller adds the readings up. tp_packets
 * includes tp_drops: it counts every packet that passed the socket filter.
 */
#include <errno.h>
#include <linux/if_packet.h>
#include <string.h>
#include <sys/socket.h>

#include <node_api.h>
#include <pcap/pcap.h>

#ifndef SOL_PACKET
#define SOL_PACKET 263
#endif

static napi_value throw_errno(napi_env env, int err) {
  napi_throw_error(env, NULL, strerror(err));
  return NULL;
}

/* readStats(fd) -> [packets, drops]; throws with the system error's text. */
static napi_value read_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, NULL, "expected a file descriptor");
    return NULL;
  }
  int32_t fd;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "expected a file descriptor");
    return NULL;
  }
  /* The v3 layout starts with the v1/v2 one, and the kernel copies the one of its ring version. */
  struct tpacket_stats_v3 stats;
  memset(&stats, 0, sizeof stats);
  socklen_t length = sizeof stats;
  if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &stats, &length) != 0) return throw_errno(env, errno);

  napi_value result, packets, drops;
  napi_create_array_with_length(env, 2, &result);
  napi_create_uint32(env, stats.tp_packets, &packets);
  napi_create_uint32(env, stats.tp_drops, &drops);
  napi_set_element(env, result, 0, packets);
  napi_set_element(env, result, 1, drops);
  return result;
}

/*
 * checkFilter(dlt, filter) -> null, or libpcap's error text. Compiles the BPF filter for a link
 * type (a DLT_ value) on a dead handle, which opens no socket. cap compiles a filter only while
 * opening an interface, and an open whose filter fails leaves the socket open.
 */
static napi_value check_filter(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t dlt;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &dlt) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a link type and a filter");
    return NULL;
  }
  size_t length;
  if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a link type and a filter");
    return NULL;
  }
  char filter[8192];
  if (length >= sizeof filter) {
    napi_value message;
    napi_create_string_utf8(env, "filter longer than 8191 bytes", NAPI_AUTO_LENGTH, &message);
    return message;
  }
  napi_get_value_string_utf8(env, argv[1], filter, sizeof filter, &length);

  pcap_t *dead = pcap_open_dead(dlt, 65535);
  if (dead == NULL) {
    napi_throw_error(env, NULL, "pcap_open_dead failed");
    return NULL;
  }
  struct bpf_program program;
  napi_value result;
  if (pcap_compile(dead, &program, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
    napi_create_string_utf8(env, pcap_geterr(dead), NAPI_AUTO_LENGTH, &result);
  } else {
    pcap_freecode(&program);
    napi_get_null(env, &result);
  }
  pcap_close(dead);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "readStats", NAPI_AUTO_LENGTH, read_stats, NULL, &fn);
  napi_set_named_property(env, exports, "readStats", fn);
  napi_create_function(env, "checkFilter", NAPI_AUTO_LENGTH, check_filter, NULL, &fn);
  napi_set_named_property(env, exports, "checkFilter", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
