#include "frame.h"

/* Plain bitwise CRC: the table-driven one costs 512 bytes of flash for no need at 115200 baud. */
uint16_t crc16_ccitt(const char *p, uint8_t n) {
  uint16_t crc = 0xFFFF;
  uint8_t i;
  while (n--) {
    crc ^= (uint16_t)((uint8_t)*p++) << 8;
    for (i = 0; i < 8; i++) crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
  }
  return crc;
}

char *put_str(char *p, const char *s) {
  while (*s) *p++ = *s++;
  return p;
}

char *put_u32(char *p, uint32_t v) {
  char tmp[10];
  uint8_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) *p++ = tmp[--n];
  return p;
}

char *put_hex(char *p, uint16_t v, uint8_t digits) {
  while (digits--) *p++ = "0123456789ABCDEF"[(v >> (4 * digits)) & 0xF];
  return p;
}

uint8_t get_u32(const char **s, uint32_t *v) {
  const char *p = *s;
  uint32_t x = 0;
  uint8_t n = 0;
  while (*p >= '0' && *p <= '9') {
    if (++n > 9) return 0;
    x = x * 10 + (uint32_t)(*p++ - '0');
  }
  if (!n) return 0;
  *v = x;
  *s = p;
  return 1;
}

uint8_t frame_encode(char *out, uint8_t cap, uint8_t seq, const char *body) {
  char *p = out;
  uint8_t blen = 0;
  while (body[blen]) blen++;
  if (blen > FRAME_BODY_MAX || (uint16_t)blen + 10 > cap) return 0;
  *p++ = '$';
  p = put_hex(p, seq, 2);
  *p++ = ' ';
  p = put_str(p, body);
  {
    uint16_t crc = crc16_ccitt(out + 1, (uint8_t)(p - out - 1));
    *p++ = '*';
    p = put_hex(p, crc, 4);
  }
  *p++ = '\n';
  return (uint8_t)(p - out);
}

void frame_rx_init(struct frame_rx *r) {
  r->len = 0;
  r->started = 0;
  r->over = 0;
  r->have_seq = 0;
  r->last_seq = 0;
  r->seq = 0;
  r->body = 0;
  r->ok = r->bad = r->gap = 0;
}

static int8_t hexval(char c) {
  if (c >= '0' && c <= '9') return (int8_t)(c - '0');
  if (c >= 'A' && c <= 'F') return (int8_t)(c - 'A' + 10);
  return -1;
}

static uint8_t parse_hex(const char *p, uint8_t n, uint16_t *v) {
  uint16_t x = 0;
  while (n--) {
    int8_t h = hexval(*p++);
    if (h < 0) return 0;
    x = (uint16_t)((x << 4) | (uint8_t)h);
  }
  *v = x;
  return 1;
}

/* Checks the line in r->buf (without '$' and '\n'): "SS body*CCCC". */
static uint8_t frame_check(struct frame_rx *r) {
  uint16_t seq, crc;
  uint8_t n = r->len;
  if (!r->started || r->over || n < 9) return 0; /* "SS X*CCCC" */
  if (r->buf[n - 5] != '*' || r->buf[2] != ' ') return 0;
  if (!parse_hex(r->buf, 2, &seq) || !parse_hex(r->buf + n - 4, 4, &crc)) return 0;
  if (crc16_ccitt(r->buf, (uint8_t)(n - 5)) != crc) return 0;
  r->buf[n - 5] = 0;
  r->body = r->buf + 3;
  if (r->have_seq) r->gap = (uint16_t)(r->gap + (uint8_t)(seq - r->last_seq - 1));
  r->have_seq = 1;
  r->last_seq = (uint8_t)seq;
  r->seq = (uint8_t)seq;
  return 1;
}

static void frame_restart(struct frame_rx *r, uint8_t started) {
  r->len = 0;
  r->over = 0;
  r->started = started;
}

uint8_t frame_rx_byte(struct frame_rx *r, char c) {
  uint8_t res = FRX_NONE;
  if (c == '\r') return FRX_NONE;
  if (c == '$' || c == '\n') {
    if (c == '\n' && frame_check(r)) {
      r->ok++;
      res = FRX_OK;
    } else if (r->len || r->over || (c == '\n' && r->started)) {
      r->bad++; /* a split, corrupted, overlong frame, or stray bytes */
      res = FRX_BAD;
    }
    frame_restart(r, c == '$');
    return res;
  }
  if ((uint8_t)c < 0x20 || (uint8_t)c > 0x7E || r->len >= FRAME_BUF_MAX) {
    r->over = 1; /* a control byte or an overlong line: the whole line is dropped */
    return FRX_NONE;
  }
  r->buf[r->len++] = c;
  return FRX_NONE;
}
