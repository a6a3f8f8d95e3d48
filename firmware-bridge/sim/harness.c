/*
 * Runs the pilot firmware (ELF) on libsimavr with the vehicle in the loop.
 *   UART0 <-> a pty of its own (printed in the "ready" line; no /tmp/simavr-uart0 symlink)
 *   ADC0  <- the pilot voltage the vehicle model gives for the OC1A level at the conversion start
 *   PB1   -> PWM measured edge to edge in simulated cycles
 *   PD7   -> the permit; every edge is reported as an event with its simulated time
 * Control: line commands on stdin, line replies and events on stdout, all stamped t=<sim us>.
 * The MCU starts halted ("go" releases it) so a client can open the pty first.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <avr_adc.h>
#include <avr_ioport.h>
#include <avr_timer.h>
#include <avr_uart.h>
#include <sim_avr.h>
#include <sim_cycle_timers.h>
#include <sim_elf.h>

#define F_CPU 16000000ull

static avr_t *avr;
static avr_irq_t *adc_in, *uart_in;
static int pty_master = -1, pty_keep = -1;
static void (*run_fn)(avr_t *);
static int running, frozen, uart_xon = 1;
static double speed = 1.0;
static char vehicle = 'A';
static int diode = 1, override, ov_hi, ov_lo;
static int pin_level = 1; /* OC1A / PB1 */
static uint64_t rise0, fall0, period_c, high_c, last_edge;
static int permit_level = -1;
static uint64_t wait_until; /* "wait" command, 0 = none */
static unsigned char in_buf[4096];
static size_t in_len;

static uint64_t t_us(void) { return avr->cycle * 1000000ull / F_CPU; }

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static void out(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

/* Pilot voltage (mV) the vehicle presents for a drive level: 1 = +12 V, 0 = -12 V. */
static int pilot_mv(int level) {
  if (override) return level ? ov_hi : ov_lo;
  switch (vehicle) {
    case 'A': return level ? 12000 : -12000;
    case 'B': return level ? 9000 : (diode ? -12000 : -9000);
    case 'C': return level ? 6000 : (diode ? -12000 : -6000);
    case 'D': return level ? 3000 : (diode ? -12000 : -3000);
    case 'E': return 0;
    default: return -12000; /* F */
  }
}

static void on_adc_trigger(avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq, (void)value, (void)param;
  int mv = pilot_mv(pin_level);
  int adc_mv = (mv + 12000) * 5000 / 24000; /* the board's divider */
  avr_raise_irq(adc_in, (uint32_t)adc_mv);
}

static void on_pilot_pin(avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq, (void)param;
  int v = value ? 1 : 0;
  if (v == pin_level) return;
  pin_level = v;
  last_edge = avr->cycle;
  if (v) {
    if (rise0 && fall0 > rise0) {
      period_c = avr->cycle - rise0;
      high_c = fall0 - rise0;
    }
    rise0 = avr->cycle;
  } else {
    fall0 = avr->cycle;
  }
}

static void report_permit(int v) {
  if (v == permit_level) return;
  permit_level = v;
  out("permit t=%llu v=%d", (unsigned long long)t_us(), v);
}

static void on_permit_pin(avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq, (void)param;
  report_permit(value ? 1 : 0);
}

/* The pin as the port drives it (after a reset the IRQ does not fire). */
static int permit_from_regs(void) {
  uint8_t ddr = avr->data[0x2A], port = avr->data[0x2B]; /* DDRD, PORTD */
  return (ddr & 0x80) && (port & 0x80) ? 1 : 0;
}

/* Noise is put on the wire between the MCU's lines (never inside one), so counts stay exact. */
static char noise_buf[4096];
static size_t noise_len;
static int mid_line;

static void flush_noise(void) {
  if (noise_len && write(pty_master, noise_buf, noise_len) < 0) {
  }
  noise_len = 0;
}

/* Bytes of the MCU's output the pty did not take (lost). */
static unsigned long tx_lost;
/* Unthrottled, the reader once failed to make room for a whole second: gone, no more waiting. */
static int reader_gone;

static void on_uart_out(avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq, (void)param;
  unsigned char c = (unsigned char)value;
  for (;;) {
    if (write(pty_master, &c, 1) == 1) {
      reader_gone = 0;
      break;
    }
    /* In real time, a board that does not read loses the byte, as on a wire. Unthrottled,
       simulated time owes nothing to the wall clock: it waits for the reader instead, so a
       loaded host slows the simulation down rather than cutting its lines. */
    if (speed > 0 || errno != EAGAIN || reader_gone) {
      tx_lost++;
      break;
    }
    struct pollfd p = {pty_master, POLLOUT, 0};
    if (poll(&p, 1, 1000) <= 0) {
      reader_gone = 1;
      tx_lost++;
      break;
    }
  }
  mid_line = c != '\n';
  if (!mid_line) flush_noise();
}
static void on_xon(avr_irq_t *irq, uint32_t v, void *p) { (void)irq, (void)v, (void)p, uart_xon = 1; }
static void on_xoff(avr_irq_t *irq, uint32_t v, void *p) { (void)irq, (void)v, (void)p, uart_xon = 0; }

static void open_pty(void) {
  struct termios t;
  pty_master = posix_openpt(O_RDWR | O_NOCTTY);
  if (pty_master < 0 || grantpt(pty_master) || unlockpt(pty_master)) {
    perror("pty");
    exit(2);
  }
  pty_keep = open(ptsname(pty_master), O_RDWR | O_NOCTTY); /* keeps reads free of EIO */
  tcgetattr(pty_keep, &t);
  cfmakeraw(&t);
  tcsetattr(pty_keep, TCSANOW, &t);
  fcntl(pty_master, F_SETFL, O_NONBLOCK);
}

/* simavr 1.6 maps Timer1 modes 14/15 as phase-correct (OCR1A ignored): patch them to fast PWM. */
static void patch_timer1(void) {
  for (avr_io_t *io = avr->io_port; io; io = io->next) {
    if (!io->kind || strcmp(io->kind, "timer") != 0) continue;
    avr_timer_t *t = (avr_timer_t *)io;
    if (t->name != '1') continue;
    t->wgm_op[14] = (avr_timer_wgm_t){.kind = avr_timer_wgm_fast_pwm, .top = avr_timer_wgm_reg_icr, .size = 16};
    t->wgm_op[15] = (avr_timer_wgm_t){.kind = avr_timer_wgm_fast_pwm, .top = avr_timer_wgm_reg_ocra, .size = 16};
  }
}

static void reply_pwm(void) {
  uint64_t idle = avr->cycle - last_edge;
  if (!period_c || idle > 2 * period_c || idle > F_CPU / 100) {
    out("ok pwm t=%llu on=0 level=%d", (unsigned long long)t_us(), pin_level);
    return;
  }
  out("ok pwm t=%llu on=1 freq=%.3f duty=%.3f period=%llu high=%llu", (unsigned long long)t_us(),
      (double)F_CPU / (double)period_c, 100.0 * (double)high_c / (double)period_c,
      (unsigned long long)period_c, (unsigned long long)high_c);
}

static void command(char *line) {
  char a[32] = "";
  int x = 0, y = 0;
  double w = 0;
  unsigned long long t = t_us();
  if (sscanf(line, "vehicle %1[ABCDEF]", a) == 1) {
    vehicle = a[0];
    override = 0;
    out("ok vehicle t=%llu v=%c", t, vehicle);
  } else if (sscanf(line, "diode %d", &x) == 1) {
    diode = x != 0;
    out("ok diode t=%llu v=%d", t, diode);
  } else if (sscanf(line, "pilot %d %d", &x, &y) == 2) {
    override = 1, ov_hi = x, ov_lo = y;
    out("ok pilot t=%llu hi=%d lo=%d", t, x, y);
  } else if (strncmp(line, "noise ", 6) == 0) {
    /* Line noise on the MCU -> board wire: the text (and a line end) as if the MCU sent it. */
    size_t n = strlen(line + 6);
    if (noise_len + n + 1 < sizeof noise_buf) {
      memcpy(noise_buf + noise_len, line + 6, n);
      noise_buf[noise_len + n] = '\n';
      noise_len += n + 1;
    }
    if (!mid_line) flush_noise();
    out("ok noise t=%llu n=%zu", t, n + 1);
  } else if (strcmp(line, "go") == 0) {
    running = 1;
    out("ok go t=%llu", t);
  } else if (strcmp(line, "freeze") == 0) {
    frozen = 1;
    out("ok freeze t=%llu", t);
  } else if (strcmp(line, "thaw") == 0) {
    frozen = 0;
    out("ok thaw t=%llu", t);
  } else if (strcmp(line, "reset") == 0) {
    avr_reset(avr);
    avr->data[0x54] |= 0x02; /* MCUSR.EXTRF: an external reset */
    frozen = 0;
    out("ok reset t=%llu", t);
  } else if (strcmp(line, "pwm") == 0) {
    reply_pwm();
  } else if (strcmp(line, "permit") == 0) {
    out("ok permit t=%llu v=%d", t, permit_from_regs());
  } else if (strcmp(line, "time") == 0) {
    out("ok time t=%llu lost=%lu", t, tx_lost);
  } else if (sscanf(line, "speed %31s", a) == 1) {
    speed = atof(a);
    out("ok speed t=%llu v=%g", t, speed);
  } else if (sscanf(line, "wait %lf", &w) == 1 && w >= 0 && w < 1e7) {
    wait_until = avr->cycle + (uint64_t)(w * (double)(F_CPU / 1000)) + 1;
  } else if (strcmp(line, "quit") == 0) {
    out("ok quit t=%llu", t);
    exit(0);
  } else {
    out("err t=%llu unknown command: %s", t, line);
  }
}

static void poll_stdin(void) {
  ssize_t n = read(0, in_buf + in_len, sizeof in_buf - in_len - 1);
  if (n == 0) exit(0); /* the controller went away */
  if (n < 0) return;
  in_len += (size_t)n;
  for (;;) {
    unsigned char *nl = memchr(in_buf, '\n', in_len);
    if (!nl) break;
    *nl = 0;
    command((char *)in_buf);
    in_len -= (size_t)(nl + 1 - in_buf);
    memmove(in_buf, nl + 1, in_len);
  }
  if (in_len == sizeof in_buf - 1) in_len = 0;
}

static void poll_pty(void) {
  static unsigned char b[256];
  static size_t len, pos;
  if (pos == len) {
    ssize_t n = read(pty_master, b, sizeof b);
    len = n > 0 ? (size_t)n : 0;
    pos = 0;
  }
  while (pos < len && uart_xon) avr_raise_irq(uart_in, b[pos++]);
}

static double wall_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One slice of simulated time: instructions, or (frozen) only the clocked peripherals. */
static void run_slice(uint64_t cycles) {
  uint64_t end = avr->cycle + cycles;
  while (avr->cycle < end) {
    if (frozen && avr->run == run_fn) {
      avr->cycle += 16;
      avr_cycle_timer_process(avr);
    } else {
      avr_run(avr); /* a watchdog reset swaps avr->run: the next call performs it */
    }
    if (avr->pc == 0 && avr->cycle > 0) {
      if (frozen) frozen = 0; /* the watchdog reset the hung chip */
      out("reset t=%llu", (unsigned long long)t_us());
      avr_run(avr);
    }
  }
}

int main(int argc, char **argv) {
  elf_firmware_t f;
  memset(&f, 0, sizeof f);
  if (argc < 2) {
    fprintf(stderr, "usage: %s firmware.elf\n", argv[0]);
    return 2;
  }
  int keep_out = dup(1), devnull = open("/dev/null", O_WRONLY);
  dup2(devnull, 1); /* libsimavr prints its loading chatter on stdout: that is the control channel */
  if (elf_read_firmware(argv[1], &f) != 0) {
    dup2(keep_out, 1);
    fprintf(stderr, "cannot read %s\n", argv[1]);
    return 2;
  }
  avr = avr_make_mcu_by_name("atmega328p");
  if (!avr) return 2;
  avr_init(avr);
  avr->frequency = F_CPU;
  avr->vcc = avr->avcc = avr->aref = 5000;
  avr->log = LOG_NONE;
  avr_load_firmware(avr, &f);
  avr->frequency = F_CPU;
  avr->data[0x54] |= 0x01; /* MCUSR.PORF: power-on */
  fflush(stdout);
  dup2(keep_out, 1);
  close(devnull);
  close(keep_out);
  patch_timer1();
  run_fn = avr->run;
  open_pty();
  fcntl(0, F_SETFL, O_NONBLOCK);

  adc_in = avr_io_getirq(avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC0);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_OUT_TRIGGER), on_adc_trigger, 0);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('B'), 1), on_pilot_pin, 0);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('D'), 7), on_permit_pin, 0);
  uart_in = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), on_uart_out, 0);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON), on_xon, 0);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF), on_xoff, 0);
  {
    uint32_t flags = 0;
    avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
    flags &= ~AVR_UART_FLAG_STDIO;
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
  }
  out("ready t=0 pty=%s", ptsname(pty_master));

  double wall0 = wall_s();
  uint64_t sim0 = 0;
  for (;;) {
    poll_stdin();
    if (!running) {
      usleep(2000);
      wall0 = wall_s();
      sim0 = avr->cycle;
      continue;
    }
    poll_pty();
    run_slice(F_CPU / 10000); /* 100 us */
    report_permit(permit_from_regs());
    if (wait_until && avr->cycle >= wait_until) {
      wait_until = 0;
      out("ok wait t=%llu", (unsigned long long)t_us());
    }
    if (speed > 0) {
      double ahead = (double)(avr->cycle - sim0) / (double)F_CPU / speed - (wall_s() - wall0);
      if (ahead > 0.0005) usleep((useconds_t)(ahead * 1e6));
      else if (ahead < -0.5) wall0 = wall_s(), sim0 = avr->cycle; /* fell behind: do not sprint */
    }
  }
}
