/*
 * Bridge frame codec (PROTOCOL.md): "$SS body*CCCC\n", SS = sequence (2 hex digits),
 * CCCC = CRC-16/CCITT-FALSE of "SS body" (4 hex digits, upper case). Compiles for AVR and host.
 */
#ifndef FRAME_H
#define FRAME_H
#include <stdint.h>

#define FRAME_BODY_MAX 72 /* longest body */
#define FRAME_BUF_MAX (FRAME_BODY_MAX + 8)

uint16_t crc16_ccitt(const char *p, uint8_t n);

/* Writes a whole frame (with '$' and '\n') into out (cap bytes); returns its length, 0 if too long. */
uint8_t frame_encode(char *out, uint8_t cap, uint8_t seq, const char *body);

struct frame_rx {
  char buf[FRAME_BUF_MAX + 1];
  uint8_t len;
  uint8_t started; /* a '$' opened the current frame */
  uint8_t over;    /* the current line overflowed */
  uint8_t have_seq;
  uint8_t last_seq;
  uint8_t seq; /* of the frame just decoded */
  const char *body;
  uint16_t ok, bad, gap;
};
enum { FRX_NONE = 0, FRX_OK, FRX_BAD };

void frame_rx_init(struct frame_rx *r);
/* Feeds one byte; FRX_OK leaves the body (NUL-terminated) in r->body and its sequence in r->seq. */
uint8_t frame_rx_byte(struct frame_rx *r, char c);

/* Small text helpers (no printf on the MCU). Return the new end. */
char *put_str(char *p, const char *s);
char *put_u32(char *p, uint32_t v);
char *put_hex(char *p, uint16_t v, uint8_t digits);
/* Parses a decimal number; returns 1 on success and moves *s past it. */
uint8_t get_u32(const char **s, uint32_t *v);

#endif
