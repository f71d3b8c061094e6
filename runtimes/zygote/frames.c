/* A MessagePack subset, enough for the zygote's control channel (frames.h). */
#include <string.h>
#include "frames.h"

struct cursor { const uint8_t *p, *end; int bad; };

static uint64_t be (struct cursor *c, size_t n) {
  uint64_t v = 0;
  if ((size_t)(c->end - c->p) < n) { c->bad = 1; return 0; }
  for (size_t i = 0; i < n; i++) v = v << 8 | c->p[i];
  c->p += n;
  return v;
}

static uint8_t byte (struct cursor *c) { return (uint8_t)be(c, 1); }

/* Reads one value; nested maps are skipped over and returned as a span. */
static struct value read_value (struct cursor *c, int depth);

static long map_header (struct cursor *c) {
  uint8_t b = byte(c);
  if ((b & 0xf0) == 0x80) return b & 0x0f;
  if (b == 0xde) return (long)be(c, 2);
  c->bad = 1;
  return 0;
}

static struct value read_value (struct cursor *c, int depth) {
  struct value v = { .kind = K_NONE };
  size_t n = 0;
  uint8_t b = byte(c);
  if (c->bad) return v;
  if (b <= 0x7f) { v.kind = K_INT; v.i = b; return v; }
  if (b >= 0xe0) { v.kind = K_INT; v.i = (int8_t)b; return v; }
  if ((b & 0xe0) == 0xa0) n = b & 0x1f;
  else if (b == 0xd9) n = be(c, 1);
  else if (b == 0xda) n = be(c, 2);
  else if (b == 0xdb) n = be(c, 4);
  else if (b == 0xc0) { v.kind = K_NIL; return v; }
  else if (b >= 0xcc && b <= 0xcf) { v.kind = K_INT; v.i = (int64_t)be(c, (size_t)1 << (b - 0xcc)); return v; }
  else if (b >= 0xd0 && b <= 0xd3) {
    size_t w = (size_t)1 << (b - 0xd0);
    uint64_t raw = be(c, w);
    v.kind = K_INT;
    v.i = w == 8 ? (int64_t)raw : (int64_t)(raw << (64 - 8 * w)) >> (64 - 8 * w);
    return v;
  } else if (b == 0xcb) { /* msgpackr writes integers beyond 32 bits as float64 */
    uint64_t raw = be(c, 8);
    double d;
    memcpy(&d, &raw, sizeof d);
    if (d < 0 || d > 9007199254740992.0 || d != (double)(int64_t)d) { c->bad = 1; return v; }
    v.kind = K_INT;
    v.i = (int64_t)d;
    return v;
  } else if (((b & 0xf0) == 0x80 || b == 0xde) && depth == 0) {
    const uint8_t *start = --c->p;
    long fields = map_header(c);
    for (long i = 0; i < 2 * fields && !c->bad; i++) read_value(c, depth + 1);
    v.kind = K_MAP;
    v.map = start;
    v.map_len = (size_t)(c->p - start);
    return v;
  } else { c->bad = 1; return v; }
  if ((size_t)(c->end - c->p) < n) { c->bad = 1; return v; }
  v.kind = K_STR;
  v.str = (const char *)c->p;
  v.len = n;
  c->p += n;
  return v;
}

struct value map_get (const uint8_t *buf, size_t len, const char *key) {
  struct cursor c = { buf, buf + len, 0 };
  struct value none = { .kind = K_NONE };
  long fields = map_header(&c);
  size_t klen = strlen(key);
  for (long i = 0; i < fields && !c.bad; i++) {
    struct value k = read_value(&c, 1);
    struct value v = read_value(&c, 0);
    if (c.bad || k.kind != K_STR) return none;
    if (k.len == klen && memcmp(k.str, key, klen) == 0) return v;
  }
  return none;
}

int value_is (struct value v, const char *s) {
  return v.kind == K_STR && v.len == strlen(s) && memcmp(v.str, s, v.len) == 0;
}

static void put (struct out *o, const void *p, size_t n) {
  if (o->len + n > sizeof o->buf) { o->overflow = 1; return; }
  memcpy(o->buf + o->len, p, n);
  o->len += n;
}

static void put_be (struct out *o, uint64_t v, size_t n) {
  uint8_t b[8];
  for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
  put(o, b, n);
}

void out_map (struct out *o, unsigned fields) {
  o->len = 4; /* room for the length prefix */
  o->overflow = 0;
  put_be(o, 0x80 | (fields & 0x0f), 1);
}

void out_str (struct out *o, const char *s, size_t len) {
  if (len < 32) put_be(o, 0xa0 | len, 1);
  else if (len < 256) { put_be(o, 0xd9, 1); put_be(o, len, 1); }
  else { put_be(o, 0xda, 1); put_be(o, len > 0xffff ? 0xffff : len, 2); if (len > 0xffff) len = 0xffff; }
  put(o, s, len);
}

void out_cstr (struct out *o, const char *s) { out_str(o, s, strlen(s)); }

/* The smallest encoding: msgpackr reads 64-bit integers as BigInt. */
void out_int (struct out *o, int64_t i) {
  if (i >= 0 && i <= 0x7f) put_be(o, (uint64_t)i, 1);
  else if (i >= 0 && i <= 0xff) { put_be(o, 0xcc, 1); put_be(o, (uint64_t)i, 1); }
  else if (i >= 0 && i <= 0xffff) { put_be(o, 0xcd, 1); put_be(o, (uint64_t)i, 2); }
  else if (i >= 0 && i <= 0xffffffffLL) { put_be(o, 0xce, 1); put_be(o, (uint64_t)i, 4); }
  else if (i >= -32 && i < 0) put_be(o, (uint64_t)(uint8_t)i, 1);
  else if (i >= INT32_MIN && i < 0) { put_be(o, 0xd2, 1); put_be(o, (uint64_t)(uint32_t)i, 4); }
  else { put_be(o, i < 0 ? 0xd3 : 0xcf, 1); put_be(o, (uint64_t)i, 8); }
}

void out_nil (struct out *o) { put_be(o, 0xc0, 1); }
void out_bool (struct out *o, int b) { put_be(o, b ? 0xc3 : 0xc2, 1); }

size_t out_finish (struct out *o) {
  if (o->overflow) return 0;
  uint32_t body = (uint32_t)(o->len - 4);
  for (int i = 0; i < 4; i++) o->buf[i] = (uint8_t)(body >> (8 * (3 - i)));
  return o->len;
}
