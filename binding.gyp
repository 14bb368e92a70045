{
  "targets": [
    {
      "target_name": "packet_stats",
      "sources": ["src/capture/native/packet-stats.c"],
      "cflags": ["-Wall", "-Wextra"]
    }
  ]
}
