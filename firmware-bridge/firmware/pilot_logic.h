/*
 * Pure control-pilot logic: no registers, no timing source. Compiles for the AVR and the host.
 * Voltages are pilot millivolts (-12000 .. +12000), currents deci-amps, duty per mille.
 */
#ifndef PILOT_LOGIC_H
#define PILOT_LOGIC_H
#include <stdint.h>

enum pilot_state { PS_A = 0, PS_B, PS_C, PS_D, PS_E, PS_F, PS_X, PS_COUNT };
/* PS_X: the high level lies in no band (between bands, over-voltage): never a permit state. */

/* Tolerance bands of the high level (IEC 61851-1 / J1772 Table A1), mV. */
#define BAND_A_LO 11400
#define BAND_A_HI 12600
#define BAND_B_LO 8360
#define BAND_B_HI 9560
#define BAND_C_LO 5480
#define BAND_C_HI 6490
#define BAND_D_LO 2620
#define BAND_D_HI 3250
#define BAND_E_LO (-1000)
#define BAND_E_HI 1000
#define BAND_F_LO (-12600)
#define BAND_F_HI (-11400)
/* Low half with the diode present. */
#define BAND_DIODE_LO (-12600)
#define BAND_DIODE_HI (-11400)
/* The confirmed state's band is widened by this much on each side. */
#define PILOT_HYST_MV 300

/* Debounce, in samples (one sample per 1 ms PWM period). */
#define DEB_INTO_CD 100 /* into C/D: confirmed after 100 ms (<= 250 ms) */
#define DEB_OUT_CD 2    /* out of C/D: 2 samples in a row outside C/D, any states (<= 10 ms) */
#define DEB_OTHER 20    /* any other change */

/* Diode check: good low halves needed, bad low halves that fail it. */
#define DIODE_GOOD_N 5
#define DIODE_BAD_N 2

enum diode_state { DIODE_UNKNOWN = 0, DIODE_OK, DIODE_FAIL };

/* Reasons the permit is off (bits). */
#define WHY_STATE 0x01 /* pilot not in C/D (or not in A for the relay test) */
#define WHY_PWM 0x02   /* PWM off (or on, for the relay test) */
#define WHY_DIODE 0x04 /* diode not verified or failed */
#define WHY_HB 0x08    /* heartbeat missing or older than the limit */

uint8_t pilot_classify(int16_t high_mv, uint8_t confirmed);
uint8_t pilot_is_cd(uint8_t st);
char pilot_state_char(uint8_t st);

struct pilot_deb {
  uint8_t state; /* confirmed */
  uint8_t cand;
  uint8_t count;
};
void pilot_deb_init(struct pilot_deb *d, uint8_t st);
uint8_t pilot_deb_threshold(uint8_t from, uint8_t to);
/* Feeds one raw classification; returns 1 when the confirmed state changed. */
uint8_t pilot_deb_feed(struct pilot_deb *d, uint8_t raw);

struct diode_chk {
  uint8_t state;
  uint8_t good;
  uint8_t bad;
};
void diode_init(struct diode_chk *c);
/* One low-half sample; pwm_on = 0 makes the check unknown again. Returns 1 on a change. */
uint8_t diode_feed(struct diode_chk *c, uint8_t pwm_on, int16_t low_mv);

/* Duty (per mille) for a current in deci-amps, 0 = refused (outside 6..80 A). */
uint16_t duty_from_deciamps(uint16_t da);

struct permit_in {
  uint8_t state;
  uint8_t diode;
  uint8_t pwm_on;
  uint8_t hb_ok;
  uint8_t test_req; /* relay test asked */
  uint8_t leaving;  /* WHY_ bits the latest samples point to, not yet confirmed (permit_leaving) */
  uint8_t held;     /* the charge permit is on now */
};
enum permit_kind { PERMIT_OFF = 0, PERMIT_CHARGE, PERMIT_TEST };
/* What the latest samples say against a permit the confirmed states allow, as WHY_ bits: a
   pilot sample outside C/D while C/D is confirmed (WHY_STATE), a bad low half while the diode
   is confirmed (WHY_DIODE). Such a sample does not drop a held permit (the debounce does that,
   in 2 periods), but it holds back a grant: the permit is never turned on against the newest
   reading. */
uint8_t permit_leaving(const struct pilot_deb *d, const struct diode_chk *c);
/* The permit decision; *why gets the reasons it is off (0 when granted). */
uint8_t permit_decide(const struct permit_in *in, uint8_t *why);
/* The relay test is allowed only in A with PWM off and a live heartbeat. */
uint8_t permit_test_allowed(const struct permit_in *in);

#endif
