#include "pilot_logic.h"

static const int16_t band_lo[6] = {BAND_A_LO, BAND_B_LO, BAND_C_LO, BAND_D_LO, BAND_E_LO, BAND_F_LO};
static const int16_t band_hi[6] = {BAND_A_HI, BAND_B_HI, BAND_C_HI, BAND_D_HI, BAND_E_HI, BAND_F_HI};

uint8_t pilot_classify(int16_t mv, uint8_t confirmed) {
  uint8_t i;
  /* Hysteresis: the confirmed state keeps a wider band; the bands never overlap even widened. */
  if (confirmed < PS_X) {
    if (mv >= band_lo[confirmed] - PILOT_HYST_MV && mv <= band_hi[confirmed] + PILOT_HYST_MV) return confirmed;
  }
  for (i = 0; i < 6; i++) {
    if (mv >= band_lo[i] && mv <= band_hi[i]) return i;
  }
  return PS_X;
}

uint8_t pilot_is_cd(uint8_t st) { return st == PS_C || st == PS_D; }

char pilot_state_char(uint8_t st) { return st < PS_COUNT ? "ABCDEFX"[st] : '?'; }

void pilot_deb_init(struct pilot_deb *d, uint8_t st) {
  d->state = st;
  d->cand = st;
  d->count = 0;
}

uint8_t pilot_deb_threshold(uint8_t from, uint8_t to) {
  if (pilot_is_cd(from)) return DEB_OUT_CD; /* C<->D and out of C/D: fast */
  if (pilot_is_cd(to)) return DEB_INTO_CD;
  return DEB_OTHER;
}

uint8_t pilot_deb_feed(struct pilot_deb *d, uint8_t raw) {
  if (raw == d->state) {
    d->cand = raw;
    d->count = 0;
    return 0;
  }
  if (raw != d->cand) {
    /* Out of C/D every sample outside C/D counts, whichever state it reads: a level flickering
       between two other states (B and between bands) must not hold the permit. */
    if (!(pilot_is_cd(d->state) && !pilot_is_cd(raw) && !pilot_is_cd(d->cand))) d->count = 0;
    d->cand = raw;
  }
  if (++d->count >= pilot_deb_threshold(d->state, raw)) {
    d->state = raw;
    d->count = 0;
    return 1;
  }
  return 0;
}

void diode_init(struct diode_chk *c) {
  c->state = DIODE_UNKNOWN;
  c->good = 0;
  c->bad = 0;
}

uint8_t diode_feed(struct diode_chk *c, uint8_t pwm_on, int16_t low_mv) {
  uint8_t before = c->state;
  int16_t h = c->state == DIODE_OK ? PILOT_HYST_MV : 0;
  if (!pwm_on) {
    diode_init(c);
  } else if (low_mv >= BAND_DIODE_LO - h && low_mv <= BAND_DIODE_HI + h) {
    c->bad = 0;
    if (c->good < DIODE_GOOD_N) c->good++;
    if (c->good >= DIODE_GOOD_N) c->state = DIODE_OK;
  } else {
    c->good = 0;
    if (c->bad < DIODE_BAD_N) c->bad++;
    if (c->bad >= DIODE_BAD_N) c->state = DIODE_FAIL;
  }
  return c->state != before;
}

uint16_t duty_from_deciamps(uint16_t da) {
  if (da < 60 || da > 800) return 0;
  /* Rounded to the nearest per mille. */
  if (da <= 510) return (uint16_t)(((uint32_t)da * 10u + 3u) / 6u); /* A / 0.6 */
  return (uint16_t)(((uint32_t)da * 4u + 5u) / 10u + 640u);        /* A / 2.5 + 64 */
}

uint8_t permit_test_allowed(const struct permit_in *in) {
  return in->state == PS_A && !in->pwm_on && in->hb_ok;
}

uint8_t permit_leaving(const struct pilot_deb *d, const struct diode_chk *c) {
  uint8_t w = 0;
  if (pilot_is_cd(d->state) && !pilot_is_cd(d->cand)) w |= WHY_STATE;
  if (c->state == DIODE_OK && c->bad > 0) w |= WHY_DIODE;
  return w;
}

uint8_t permit_decide(const struct permit_in *in, uint8_t *why) {
  uint8_t w = 0;
  if (in->test_req) {
    if (in->state != PS_A) w |= WHY_STATE;
    if (in->pwm_on) w |= WHY_PWM;
    if (!in->hb_ok) w |= WHY_HB;
    *why = w;
    return w ? PERMIT_OFF : PERMIT_TEST;
  }
  if (!pilot_is_cd(in->state)) w |= WHY_STATE;
  if (!in->pwm_on) w |= WHY_PWM;
  if (in->diode != DIODE_OK) w |= WHY_DIODE;
  if (!in->hb_ok) w |= WHY_HB;
  /* Only when nothing else holds it back: the reasons do not flicker with every odd sample. */
  if (!w && !in->held) w = in->leaving;
  *why = w;
  return w ? PERMIT_OFF : PERMIT_CHARGE;
}
