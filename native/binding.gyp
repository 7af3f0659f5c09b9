{
  "targets": [
    {
      "target_name": "lunkit_native",
      "sources": ["src/lunkit_native.c", "src/fuse_channel.c", "src/fuse_poll.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE", "_FILE_OFFSET_BITS=64"]
    }
  ]
}
