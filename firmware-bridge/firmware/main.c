/*
 * Pilot MCU firmware, ATmega328P at 16 MHz (OpenEVSE class of board).
 *   PB1/OC1A  pilot drive: high = +12 V, low = -12 V (1 kHz PWM from Timer1, mode 14, ICR1 TOP)
 *   PC0/ADC0  pilot sense through a divider: 0 V = -12 V pilot, 5 V = +12 V pilot (AVcc reference)
 *   PD7       contactor permit (active high; an external pull-down holds it off through a reset)
 *   UART0     bridge to the board, 115200 8N1 (PROTOCOL.md)
 * The pilot is sampled twice per PWM period: 20 us after the rising edge (high half) and at the
 * falling edge (low half, sample-and-hold 1.5 ADC clocks later). The main loop classifies each
 * pair, decides the permit and resets the watchdog; a hung loop is reset by the watchdog.
 */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/wdt.h>
#include <stdint.h>

#include "frame.h"
#include "pilot_logic.h"

#define FW_VERSION "1.0.0"
#define TOP 1999u            /* 16 MHz / 8 / 2000 = 1 kHz */
#define HIGH_SAMPLE_TICKS 40 /* 20 us after the rising edge */
#define HB_DEFAULT_MS 500u
#define HB_MIN_MS 50u
#define HB_MAX_MS 10000u

uint8_t reset_flags __attribute__((section(".noinit")));

/* Saves the reset cause and stops the watchdog before anything else (it stays armed after a
 * watchdog reset). Every output comes up in its safe state: permit off, pilot steady +12 V. */
void early_init(void) __attribute__((naked, used, section(".init3")));
void early_init(void) {
  reset_flags = MCUSR;
  MCUSR = 0;
  wdt_disable();
  PORTD &= (uint8_t)~_BV(PD7);
  DDRD |= _BV(PD7);
  PORTB |= _BV(PB1);
  DDRB |= _BV(PB1);
}

/* ---- UART: interrupt-driven rings; a full TX ring drops the line, never blocks ---- */
static volatile uint8_t rx_ring[64], rx_head, rx_tail;
static volatile uint8_t tx_ring[256], tx_head, tx_tail;
static uint16_t tx_drop;

ISR(USART_RX_vect) {
  uint8_t c = UDR0;
  uint8_t n = (uint8_t)((rx_head + 1) & 63);
  if (n != rx_tail) {
    rx_ring[rx_head] = c;
    rx_head = n;
  }
}

ISR(USART_UDRE_vect) {
  if (tx_head == tx_tail) {
    UCSR0B &= (uint8_t)~_BV(UDRIE0);
    return;
  }
  UDR0 = tx_ring[tx_tail];
  tx_tail = (uint8_t)(tx_tail + 1);
}

static uint8_t tx_seq;

/* Bytes free in the TX ring. */
static uint8_t tx_room(void) { return (uint8_t)(255u - (uint8_t)(tx_head - tx_tail)); }

/* Queues one frame; 0 when the ring had no room for it (dropped, counted). */
static uint8_t send_body(const char *body) {
  char f[FRAME_BUF_MAX + 4];
  uint8_t n = frame_encode(f, sizeof f, tx_seq, body), i;
  if (!n) return 0;
  if (tx_room() < n) {
    tx_drop++;
    return 0;
  }
  tx_seq++;
  for (i = 0; i < n; i++) {
    tx_ring[tx_head] = (uint8_t)f[i];
    tx_head = (uint8_t)(tx_head + 1);
  }
  UCSR0B |= _BV(UDRIE0);
  return 1;
}

/* ---- pilot sampling: Timer1 compare interrupts start the conversions ---- */
static volatile uint16_t adc_high, adc_low;
static volatile uint8_t pair_ready;
static volatile uint32_t ms;

ISR(TIMER1_COMPB_vect) { /* 20 us into the high half: the low conversion has ended */
  adc_low = ADC;
  pair_ready++;
  ms++;
  ADCSRA |= _BV(ADSC);
}

ISR(TIMER1_COMPA_vect) { /* falling edge: the high conversion has ended */
  adc_high = ADC;
  ADCSRA |= _BV(ADSC);
}

static uint32_t now_ms(void) {
  uint32_t v;
  cli();
  v = ms;
  sei();
  return v;
}

static int16_t adc_to_mv(uint16_t a) { return (int16_t)((int32_t)a * 24000 / 1023 - 12000); }

/* ---- state ---- */
static struct pilot_deb deb;
static struct diode_chk dio;
static struct frame_rx rx;
static uint8_t pwm_on, test_req, permit, why, have_hb;
static uint16_t duty, deciamps, hb_limit = HB_DEFAULT_MS;
static uint32_t last_hb;

static void pwm_apply(void) {
  if (pwm_on) {
    OCR1A = (uint16_t)(duty * 2u - 1u);
    TCCR1A |= _BV(COM1A1);
  } else {
    TCCR1A &= (uint8_t)~_BV(COM1A1); /* pin back to PORTB1 = steady +12 V */
    /* Driven high again explicitly: simavr 1.6 leaves the pin at the compare output's last level
       when the output disconnects (a PWM stopped in its low half read as state F). */
    PORTB |= _BV(PB1);
    OCR1A = TOP / 2;                 /* keeps the second sample point */
  }
}

static void hw_init(void) {
  UBRR0 = 16; /* 115200 with U2X at 16 MHz */
  UCSR0A = _BV(U2X0);
  UCSR0C = _BV(UCSZ01) | _BV(UCSZ00);
  UCSR0B = _BV(RXEN0) | _BV(TXEN0) | _BV(RXCIE0);
  ADMUX = _BV(REFS0); /* AVcc, ADC0 */
  ADCSRA = _BV(ADEN) | _BV(ADPS2) | _BV(ADPS1); /* /64: 250 kHz, 52 us a conversion */
  DIDR0 = _BV(ADC0D);
  ICR1 = TOP;
  OCR1B = HIGH_SAMPLE_TICKS;
  pwm_apply();
  TCCR1A = (uint8_t)((TCCR1A & _BV(COM1A1)) | _BV(WGM11));
  TCCR1B = _BV(WGM13) | _BV(WGM12) | _BV(CS11);
  TIMSK1 = _BV(OCIE1A) | _BV(OCIE1B);
}

static const char *cause_name(uint8_t f) {
  if (f & _BV(WDRF)) return "WDT";
  if (f & _BV(BORF)) return "BOR";
  if (f & _BV(EXTRF)) return "EXT";
  if (f & _BV(PORF)) return "POR";
  return "UNK";
}

static void send_hello(void) {
  char b[FRAME_BODY_MAX];
  char *p = put_str(b, "HELLO fw=" FW_VERSION " cause=");
  p = put_str(p, cause_name(reset_flags));
  p = put_str(p, " permit=");
  *p++ = (char)('0' + (permit != PERMIT_OFF));
  p = put_str(p, " hb=");
  p = put_u32(p, hb_limit);
  *p = 0;
  send_body(b);
}

static char *put_why(char *p, uint8_t w) {
  static const char names[4][4] = {"st", "pwm", "dio", "hb"};
  uint8_t i, first = 1;
  if (!w) return put_str(p, "-");
  for (i = 0; i < 4; i++) {
    if (!(w & (1u << i))) continue;
    if (!first) *p++ = ',';
    p = put_str(p, names[i]);
    first = 0;
  }
  return p;
}

/* A change's STATE waits while the ring has less than a frame and ACK_ROOM free: a plant that
   changes faster than the wire must not crowd out the ACKs (the board would time its commands
   out), and a STATE that waited still tells the latest. It is owed until then, and goes out, as
   the state is then, once it fits: the board is never left with a stale view. */
#define ACK_ROOM 64 /* two ACKs, with an error name each */
static uint8_t state_owed;

static uint8_t state_fits(void) { return tx_room() >= FRAME_BUF_MAX + ACK_ROOM; }

/* The STATE frame; `asked` (GET: the reply comes before its ACK) goes out now or is dropped. */
static void send_state(uint8_t asked) {
  static const char dnames[3][4] = {"unk", "ok", "bad"};
  char b[FRAME_BODY_MAX];
  char *p;
  if (!asked && !state_fits()) {
    state_owed = 1;
    return;
  }
  p = put_str(b, "STATE st=");
  *p++ = pilot_state_char(deb.state);
  p = put_str(p, " permit=");
  *p++ = (char)('0' + (permit == PERMIT_CHARGE ? 1 : permit == PERMIT_TEST ? 2 : 0));
  p = put_str(p, " diode=");
  p = put_str(p, dnames[dio.state]);
  p = put_str(p, " pwm=");
  *p++ = (char)('0' + pwm_on);
  p = put_str(p, " duty=");
  p = put_u32(p, pwm_on ? duty : 1000);
  p = put_str(p, " cur=");
  p = put_u32(p, pwm_on ? deciamps : 0);
  p = put_str(p, " why=");
  p = put_why(p, why);
  *p = 0;
  if (send_body(b)) state_owed = 0; /* unasked it fits; asked, a STATE owed stays owed */
}

static void send_counters(void) {
  char b[FRAME_BODY_MAX];
  char *p = put_str(b, "CNT ok=");
  p = put_u32(p, rx.ok);
  p = put_str(p, " bad=");
  p = put_u32(p, rx.bad);
  p = put_str(p, " gap=");
  p = put_u32(p, rx.gap);
  p = put_str(p, " txdrop=");
  p = put_u32(p, tx_drop);
  p = put_str(p, " up=");
  p = put_u32(p, now_ms());
  *p = 0;
  send_body(b);
}

static void send_ack(uint8_t seq, const char *err) {
  char b[24];
  char *p = put_str(b, "ACK ");
  p = put_hex(p, seq, 2);
  p = put_str(p, err ? " ERR " : " OK");
  if (err) p = put_str(p, err);
  *p = 0;
  send_body(b);
}

static uint8_t eq_word(const char **s, const char *w) {
  const char *p = *s;
  while (*w)
    if (*p++ != *w++) return 0;
  if (*p != ' ' && *p != 0) return 0;
  *s = *p ? p + 1 : p;
  return 1;
}

static uint8_t hb_live(void) { return have_hb && (now_ms() - last_hb) <= hb_limit; }

/* One command body; returns the error name or 0. Bad input changes nothing. */
static const char *command(const char *s) {
  uint32_t a, b;
  if (eq_word(&s, "HB")) {
    have_hb = 1;
    last_hb = now_ms();
  } else if (eq_word(&s, "SET")) {
    if (!get_u32(&s, &a) || a > 1 || *s++ != ' ' || !get_u32(&s, &b) || *s) return "ARG";
    if (a && !duty_from_deciamps((uint16_t)b)) return "RANGE";
    if (a) {
      duty = duty_from_deciamps((uint16_t)b);
      deciamps = (uint16_t)b;
    }
    pwm_on = (uint8_t)a;
    pwm_apply();
  } else if (eq_word(&s, "CFG")) {
    if (!get_u32(&s, &a) || *s || a < HB_MIN_MS || a > HB_MAX_MS) return "RANGE";
    hb_limit = (uint16_t)a;
  } else if (eq_word(&s, "TEST")) {
    struct permit_in in = {deb.state, dio.state, pwm_on, hb_live(), 1, 0, 0};
    if (!get_u32(&s, &a) || a > 1 || *s) return "ARG";
    if (a && !permit_test_allowed(&in)) return "STATE";
    test_req = (uint8_t)a;
  } else if (eq_word(&s, "GET")) {
    send_state(1);
  } else if (eq_word(&s, "CNT")) {
    send_counters();
  } else if (eq_word(&s, "HELLO")) {
    send_hello();
  } else {
    return "CMD";
  }
  return 0;
}

static void poll_uart(void) {
  while (rx_tail != rx_head) {
    char c = (char)rx_ring[rx_tail];
    rx_tail = (uint8_t)((rx_tail + 1) & 63);
    if (frame_rx_byte(&rx, c) == FRX_OK) send_ack(rx.seq, command(rx.body));
  }
}

/* The permit decision, applied to the pin at once; returns 1 when anything reported changed. */
static uint8_t decide(void) {
  struct permit_in in = {deb.state, dio.state, pwm_on, hb_live(), test_req, permit_leaving(&deb, &dio),
                         permit == PERMIT_CHARGE};
  uint8_t w, p;
  if (test_req && !permit_test_allowed(&in)) in.test_req = test_req = 0;
  p = permit_decide(&in, &w);
  if (p != PERMIT_OFF) PORTD |= _BV(PD7);
  else PORTD &= (uint8_t)~_BV(PD7);
  if (p == permit && w == why) return 0;
  permit = p;
  why = w;
  return 1;
}

int main(void) {
  uint8_t seen = 0, last_pwm = 0;
  uint16_t last_duty = 0;
  frame_rx_init(&rx);
  pilot_deb_init(&deb, PS_X);
  diode_init(&dio);
  hw_init();
  wdt_enable(WDTO_60MS); /* a hang drops the permit within 100 ms (IEC 61851-1 Table A.6) */
  sei();
  send_hello();
  for (;;) {
    uint8_t changed = 0;
    wdt_reset();
    poll_uart();
    if (pair_ready != seen) {
      uint16_t h, l;
      cli();
      h = adc_high;
      l = adc_low;
      seen = pair_ready;
      sei();
      changed |= pilot_deb_feed(&deb, pilot_classify(adc_to_mv(h), deb.state));
      changed |= diode_feed(&dio, pwm_on, adc_to_mv(l));
    }
    changed |= decide();
    if (pwm_on != last_pwm || duty != last_duty) {
      last_pwm = pwm_on;
      last_duty = duty;
      changed = 1;
    }
    if (changed || (state_owed && state_fits())) send_state(0);
  }
}
