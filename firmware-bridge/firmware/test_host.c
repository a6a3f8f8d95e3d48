/* Host unit tests of the pure firmware logic: bands and edges, hysteresis, debounce, diode check,
 * duty, permit decision, frame codec. Exit status 1 on any failure. */
#include <stdio.h>
#include <string.h>

#include "frame.h"
#include "pilot_logic.h"

static int failed, passed;
#define CHECK(cond)                                                   \
  do {                                                                \
    if (cond) passed++;                                               \
    else {                                                            \
      failed++;                                                       \
      fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                 \
  } while (0)

static void test_bands(void) {
  static const struct { int16_t lo, hi; uint8_t st; } b[] = {
      {BAND_A_LO, BAND_A_HI, PS_A}, {BAND_B_LO, BAND_B_HI, PS_B}, {BAND_C_LO, BAND_C_HI, PS_C},
      {BAND_D_LO, BAND_D_HI, PS_D}, {BAND_E_LO, BAND_E_HI, PS_E}, {BAND_F_LO, BAND_F_HI, PS_F},
  };
  unsigned i;
  CHECK(BAND_A_LO == 11400 && BAND_A_HI == 12600 && BAND_B_LO == 8360 && BAND_B_HI == 9560);
  CHECK(BAND_C_LO == 5480 && BAND_C_HI == 6490 && BAND_D_LO == 2620 && BAND_D_HI == 3250);
  for (i = 0; i < sizeof b / sizeof b[0]; i++) {
    /* From an unconfirmed start (X): the nominal band, edges included, and one mV outside not. */
    CHECK(pilot_classify(b[i].lo, PS_X) == b[i].st);
    CHECK(pilot_classify(b[i].hi, PS_X) == b[i].st);
    CHECK(pilot_classify((int16_t)((b[i].lo + b[i].hi) / 2), PS_X) == b[i].st);
    CHECK(pilot_classify((int16_t)(b[i].lo - 1), PS_X) == PS_X);
    CHECK(pilot_classify((int16_t)(b[i].hi + 1), PS_X) == PS_X);
    /* Hysteresis: the confirmed state keeps PILOT_HYST_MV more on each side, not one mV more. */
    CHECK(pilot_classify((int16_t)(b[i].lo - PILOT_HYST_MV), b[i].st) == b[i].st);
    CHECK(pilot_classify((int16_t)(b[i].hi + PILOT_HYST_MV), b[i].st) == b[i].st);
    CHECK(pilot_classify((int16_t)(b[i].lo - PILOT_HYST_MV - 1), b[i].st) != b[i].st);
    CHECK(pilot_classify((int16_t)(b[i].hi + PILOT_HYST_MV + 1), b[i].st) != b[i].st);
  }
  /* Nominal levels, and a confirmed state does not capture another state's band. */
  CHECK(pilot_classify(12000, PS_X) == PS_A && pilot_classify(9000, PS_A) == PS_B);
  CHECK(pilot_classify(6000, PS_B) == PS_C && pilot_classify(3000, PS_C) == PS_D);
  CHECK(pilot_classify(0, PS_D) == PS_E && pilot_classify(-12000, PS_A) == PS_F);
  CHECK(pilot_classify(8200, PS_C) == PS_X); /* widened B belongs to B only */
  CHECK(pilot_classify(8200, PS_B) == PS_B);
  CHECK(pilot_classify(10500, PS_B) == PS_X && pilot_classify(12700, PS_X) == PS_X);
  CHECK(pilot_is_cd(PS_C) && pilot_is_cd(PS_D) && !pilot_is_cd(PS_B) && !pilot_is_cd(PS_X));
}

static int feed_until_change(struct pilot_deb *d, uint8_t raw, int max) {
  int n;
  for (n = 1; n <= max; n++)
    if (pilot_deb_feed(d, raw)) return n;
  return -1;
}

static void test_debounce(void) {
  struct pilot_deb d;
  int n, k;
  pilot_deb_init(&d, PS_B);
  n = feed_until_change(&d, PS_C, 300);
  CHECK(n == DEB_INTO_CD && n <= 250 && d.state == PS_C);
  n = feed_until_change(&d, PS_B, 300);
  CHECK(n == DEB_OUT_CD && n <= 10 && d.state == PS_B);
  /* A glitch into C resets the count: C must be held without a break. */
  pilot_deb_init(&d, PS_B);
  CHECK(feed_until_change(&d, PS_C, DEB_INTO_CD - 1) == -1);
  CHECK(pilot_deb_feed(&d, PS_B) == 0 && d.state == PS_B);
  CHECK(feed_until_change(&d, PS_C, 300) == DEB_INTO_CD);
  /* Out of C to an invalid level (X) is fast too; C -> D is fast. */
  CHECK(feed_until_change(&d, PS_X, 300) == DEB_OUT_CD && d.state == PS_X);
  pilot_deb_init(&d, PS_C);
  CHECK(feed_until_change(&d, PS_D, 300) == DEB_OUT_CD);
  CHECK(feed_until_change(&d, PS_E, 300) == DEB_OUT_CD);
  CHECK(feed_until_change(&d, PS_A, 300) == DEB_OTHER);
  /* A single sample of another state in C does not leave C. */
  pilot_deb_init(&d, PS_C);
  CHECK(pilot_deb_feed(&d, PS_B) == 0 && pilot_deb_feed(&d, PS_C) == 0 && d.state == PS_C);
  CHECK(pilot_deb_threshold(PS_A, PS_B) == DEB_OTHER && pilot_deb_threshold(PS_B, PS_D) == DEB_INTO_CD);
  /* Leaving C/D through a level that flickers between two other states (B and between-bands,
     A and E) is still acted on within DEB_OUT_CD samples: every sample outside C/D counts. */
  {
    static const uint8_t flicker[][2] = {{PS_B, PS_X}, {PS_A, PS_E}, {PS_X, PS_F}};
    static const uint8_t from[] = {PS_C, PS_D};
    unsigned i, j;
    for (j = 0; j < 2; j++)
      for (i = 0; i < 3; i++) {
        int left = -1;
        pilot_deb_init(&d, from[j]);
        for (k = 1; k <= 20 && left < 0; k++)
          if (pilot_deb_feed(&d, flicker[i][k & 1])) left = k;
        CHECK(left == DEB_OUT_CD && !pilot_is_cd(d.state));
      }
    /* A C/D sample in between starts the count again; C <-> D flicker stays a permit state. */
    pilot_deb_init(&d, PS_C);
    CHECK(pilot_deb_feed(&d, PS_B) == 0 && pilot_deb_feed(&d, PS_C) == 0 && pilot_deb_feed(&d, PS_X) == 0);
    CHECK(d.state == PS_C && pilot_deb_feed(&d, PS_B) == 1 && d.state == PS_B);
    pilot_deb_init(&d, PS_C);
    for (k = 0; k < 20; k++) pilot_deb_feed(&d, k & 1 ? PS_D : PS_C);
    CHECK(pilot_is_cd(d.state));
    /* Into C/D a flicker never confirms: C must be held. */
    pilot_deb_init(&d, PS_B);
    for (k = 0; k < 300; k++) pilot_deb_feed(&d, k & 1 ? PS_C : PS_X);
    CHECK(d.state == PS_B);
  }
}

static void test_diode(void) {
  struct diode_chk c;
  int i;
  diode_init(&c);
  CHECK(c.state == DIODE_UNKNOWN);
  for (i = 0; i < DIODE_GOOD_N - 1; i++) diode_feed(&c, 1, -12000);
  CHECK(c.state == DIODE_UNKNOWN);
  CHECK(diode_feed(&c, 1, -12000) == 1 && c.state == DIODE_OK);
  CHECK(diode_feed(&c, 1, -11200) == 0 && c.state == DIODE_OK); /* hysteresis keeps it */
  diode_feed(&c, 1, -9000);
  CHECK(c.state == DIODE_OK); /* one bad half is not yet a failure */
  diode_feed(&c, 1, -9000);
  CHECK(c.state == DIODE_FAIL);
  diode_feed(&c, 0, -12000);
  CHECK(c.state == DIODE_UNKNOWN); /* PWM off: nothing is known about the diode */
  for (i = 0; i < 10; i++) diode_feed(&c, 1, 0); /* shorted pilot */
  CHECK(c.state == DIODE_FAIL);
  diode_init(&c);
  for (i = 0; i < 10; i++) diode_feed(&c, 1, -11399); /* just outside the band */
  CHECK(c.state == DIODE_FAIL);
  diode_init(&c);
  for (i = 0; i < 10; i++) diode_feed(&c, 1, -12600);
  CHECK(c.state == DIODE_OK);
}

static void test_duty(void) {
  CHECK(duty_from_deciamps(60) == 100);  /* 6 A -> 10 % */
  CHECK(duty_from_deciamps(160) == 267); /* 16 A -> 26.7 % */
  CHECK(duty_from_deciamps(320) == 533); /* 32 A -> 53.3 % */
  CHECK(duty_from_deciamps(510) == 850); /* 51 A -> 85 % */
  CHECK(duty_from_deciamps(630) == 892); /* 63 A -> 89.2 % */
  CHECK(duty_from_deciamps(800) == 960); /* 80 A -> 96 % */
  CHECK(duty_from_deciamps(59) == 0 && duty_from_deciamps(0) == 0);
  CHECK(duty_from_deciamps(801) == 0 && duty_from_deciamps(65535) == 0);
}

static void test_permit(void) {
  struct permit_in in = {PS_C, DIODE_OK, 1, 1, 0, 0, 0};
  uint8_t why, st;
  CHECK(permit_decide(&in, &why) == PERMIT_CHARGE && why == 0);
  in.state = PS_D;
  CHECK(permit_decide(&in, &why) == PERMIT_CHARGE);
  for (st = 0; st < PS_COUNT; st++) {
    in.state = st;
    if (!pilot_is_cd(st)) CHECK(permit_decide(&in, &why) == PERMIT_OFF && (why & WHY_STATE));
  }
  in.state = PS_C;
  in.diode = DIODE_FAIL;
  CHECK(permit_decide(&in, &why) == PERMIT_OFF && why == WHY_DIODE);
  in.diode = DIODE_UNKNOWN;
  CHECK(permit_decide(&in, &why) == PERMIT_OFF && why == WHY_DIODE);
  in.diode = DIODE_OK;
  in.hb_ok = 0;
  CHECK(permit_decide(&in, &why) == PERMIT_OFF && why == WHY_HB);
  in.hb_ok = 1;
  in.pwm_on = 0;
  CHECK(permit_decide(&in, &why) == PERMIT_OFF && why == WHY_PWM);
  /* Relay test: only in A with the PWM off and a live heartbeat; never charges. */
  in.test_req = 1;
  in.state = PS_A;
  CHECK(permit_decide(&in, &why) == PERMIT_TEST && permit_test_allowed(&in));
  in.state = PS_B;
  CHECK(permit_decide(&in, &why) == PERMIT_OFF && why == WHY_STATE);
  in.state = PS_C;
  CHECK(permit_decide(&in, &why) == PERMIT_OFF);
  in.state = PS_A;
  in.pwm_on = 1;
  CHECK(permit_decide(&in, &why) == PERMIT_OFF && why == WHY_PWM && !permit_test_allowed(&in));
  in.pwm_on = 0;
  in.hb_ok = 0;
  CHECK(permit_decide(&in, &why) == PERMIT_OFF && why == WHY_HB);
}

/* A sample against the permit, not yet confirmed: it holds back a grant, not a held permit. */
static void test_leaving(void) {
  struct pilot_deb d;
  struct diode_chk c;
  struct permit_in in = {PS_C, DIODE_OK, 1, 1, 0, 0, 0};
  uint8_t why, i;
  pilot_deb_init(&d, PS_C);
  diode_init(&c);
  for (i = 0; i < DIODE_GOOD_N; i++) diode_feed(&c, 1, -12000);
  CHECK(c.state == DIODE_OK && permit_leaving(&d, &c) == 0);
  CHECK(!pilot_deb_feed(&d, PS_B) && d.state == PS_C); /* one B sample: C still confirmed */
  CHECK(permit_leaving(&d, &c) == WHY_STATE);
  in.leaving = permit_leaving(&d, &c);
  CHECK(permit_decide(&in, &why) == PERMIT_OFF && why == WHY_STATE); /* no grant */
  in.held = 1;
  CHECK(permit_decide(&in, &why) == PERMIT_CHARGE && why == 0); /* held until confirmed */
  CHECK(!pilot_deb_feed(&d, PS_C) && permit_leaving(&d, &c) == 0); /* back in C: nothing pending */
  CHECK(!pilot_deb_feed(&d, PS_D) && permit_leaving(&d, &c) == 0); /* C<->D is no leaving */
  pilot_deb_init(&d, PS_B);
  CHECK(!pilot_deb_feed(&d, PS_C) && permit_leaving(&d, &c) == 0); /* into C/D: the state says no */
  pilot_deb_init(&d, PS_C);
  CHECK(!diode_feed(&c, 1, 0) && c.state == DIODE_OK); /* one bad low half: still OK */
  CHECK(permit_leaving(&d, &c) == WHY_DIODE);
  in.held = 0;
  in.leaving = permit_leaving(&d, &c);
  CHECK(permit_decide(&in, &why) == PERMIT_OFF && why == WHY_DIODE);
  diode_feed(&c, 1, -12000);
  CHECK(permit_leaving(&d, &c) == 0);
  /* The relay test is not a charge permit: leaving does not concern it. */
  in.state = PS_A;
  in.pwm_on = 0;
  in.test_req = 1;
  in.leaving = WHY_STATE | WHY_DIODE;
  CHECK(permit_decide(&in, &why) == PERMIT_TEST);
}

static int feed(struct frame_rx *r, const char *s, const char **body) {
  int res = FRX_NONE;
  while (*s) {
    uint8_t x = frame_rx_byte(r, *s++);
    if (x != FRX_NONE) res = x;
    if (x == FRX_OK && body) *body = r->body;
  }
  return res;
}

static void test_frames(void) {
  char f[FRAME_BUF_MAX + 4], bad[FRAME_BUF_MAX + 4], big[FRAME_BODY_MAX + 2];
  struct frame_rx r;
  const char *body = 0;
  uint8_t n;
  CHECK(crc16_ccitt("123456789", 9) == 0x29B1); /* CRC-16/CCITT-FALSE check value */
  n = frame_encode(f, sizeof f, 0x07, "SET 1 160");
  f[n] = 0;
  CHECK(n == strlen(f) && f[0] == '$' && f[n - 1] == '\n' && strncmp(f, "$07 SET 1 160*", 14) == 0);
  frame_rx_init(&r);
  CHECK(feed(&r, f, &body) == FRX_OK && strcmp(body, "SET 1 160") == 0 && r.seq == 7);
  CHECK(r.ok == 1 && r.bad == 0);
  /* Split across two reads: still one frame. */
  frame_rx_init(&r);
  CHECK(feed(&r, "$07 SET", 0) == FRX_NONE);
  CHECK(feed(&r, f + 7, &body) == FRX_OK && strcmp(body, "SET 1 160") == 0);
  /* Every single-character corruption of the frame is dropped and counted. */
  for (unsigned i = 1; i + 1 < n; i++) {
    memcpy(bad, f, n + 1);
    bad[i] = (char)(bad[i] == 'A' ? 'B' : bad[i] ^ 0x01);
    frame_rx_init(&r);
    CHECK(feed(&r, bad, 0) == FRX_BAD && r.ok == 0 && r.bad == 1);
  }
  /* A split line (the start of a frame, then a new frame): the fragment counted, the next kept. */
  frame_rx_init(&r);
  CHECK(feed(&r, "$08 SET 1 1", 0) == FRX_NONE);
  CHECK(feed(&r, f, &body) == FRX_OK && r.bad == 1 && r.ok == 1);
  /* Garbage between frames, a lone '$', an empty line, a control byte, lower-case hex. */
  frame_rx_init(&r);
  CHECK(feed(&r, "hello world\n", 0) == FRX_BAD && r.bad == 1);
  CHECK(feed(&r, "$\n", 0) == FRX_BAD && r.bad == 2);
  CHECK(feed(&r, "\n\r\n", 0) == FRX_NONE && r.bad == 2);
  memcpy(bad, f, n + 1);
  bad[5] = 0x01;
  CHECK(feed(&r, bad, 0) == FRX_BAD && r.bad == 3);
  CHECK(feed(&r, "$07 SET 1 160*abcd\n", 0) == FRX_BAD && r.bad == 4 && r.ok == 0);
  /* Overlong line: dropped whole, the next frame fine. */
  memset(big, 'X', sizeof big - 1);
  big[sizeof big - 1] = 0;
  CHECK(frame_encode(bad, sizeof bad, 1, big) == 0);
  frame_rx_init(&r);
  for (int i = 0; i < 200; i++) frame_rx_byte(&r, 'Y');
  CHECK(feed(&r, "\n", 0) == FRX_BAD && feed(&r, f, 0) == FRX_OK);
  /* Sequence gaps are counted, wrapping at 256. */
  frame_rx_init(&r);
  n = frame_encode(f, sizeof f, 0xFE, "HB");
  f[n] = 0;
  feed(&r, f, 0);
  n = frame_encode(f, sizeof f, 0x01, "HB");
  f[n] = 0;
  CHECK(feed(&r, f, 0) == FRX_OK && r.gap == 2);
  /* Text helpers. */
  {
    char t[16];
    const char *s = "12345 x";
    uint32_t v = 0;
    *put_u32(t, 4294967295u) = 0;
    CHECK(strcmp(t, "4294967295") == 0);
    *put_hex(t, 0xBEEF, 4) = 0;
    CHECK(strcmp(t, "BEEF") == 0);
    CHECK(get_u32(&s, &v) && v == 12345 && *s == ' ');
    s = "x";
    CHECK(!get_u32(&s, &v));
    s = "1234567890";
    CHECK(!get_u32(&s, &v)); /* more than 9 digits refused */
  }
}

int main(void) {
  test_bands();
  test_debounce();
  test_diode();
  test_duty();
  test_permit();
  test_leaving();
  test_frames();
  printf("host tests: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
