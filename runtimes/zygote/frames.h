/* The zygote's control channel: 4-byte big-endian length + one MessagePack
 * map (runtimes/PROTOCOL.md, "Zygote"). Only what that channel carries:
 * maps with string keys whose values are strings, integers, nil or (rlimits)
 * a map of integers. Anything else is refused. */
#ifndef HEARTH_FRAMES_H
#define HEARTH_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_MAX 4096

/* A value read from a map: a string (not NUL-terminated), an integer, nil, or a nested map. */
enum kind { K_NONE, K_STR, K_INT, K_NIL, K_MAP };
struct value {
  enum kind kind;
  const char *str;
  size_t len;
  int64_t i;
  const uint8_t *map; /* K_MAP: start of the nested map, for map_get */
  size_t map_len;
};

/* Finds `key` in the map at buf[0..len); K_NONE when absent or malformed. */
struct value map_get (const uint8_t *buf, size_t len, const char *key);
/* 1 when the string value equals `s` */
int value_is (struct value v, const char *s);

/* A map being written: header and fields, then frame_finish() fills in the length. */
struct out {
  uint8_t buf[FRAME_MAX];
  size_t len;
  int overflow;
};
void out_map (struct out *o, unsigned fields);
void out_str (struct out *o, const char *s, size_t len);
void out_cstr (struct out *o, const char *s);
void out_int (struct out *o, int64_t i);
void out_nil (struct out *o);
void out_bool (struct out *o, int b);
/* The length prefix; returns the frame's size, or 0 on overflow. */
size_t out_finish (struct out *o);

#endif
