{
  "targets": [
    {
      "target_name": "capture_native",
      "sources": ["src/capture/native/capture.c"],
      "cflags": ["-Wall", "-Wextra"],
      "libraries": ["-lpcap"]
    }
  ]
}
