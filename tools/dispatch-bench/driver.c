/* Dispatch benchmark: instructions per event of each generated machine
 * against the same table as a hand-written switch (see generate.py).
 *
 * For each machine a seeded random walk over its transition table writes a
 * tape of events: a request from a resting state, then the outcome each
 * action reports, until the machine rests again. Both implementations run the
 * same tape through the same emel_machine_dispatch driver, with stub actions
 * that pop the tape. Run under `valgrind --tool=callgrind`; the self cost of
 * NAME_exec and NAME_switch_exec divided by the events printed here is the
 * dispatch cost per event (tools/bench does this). Without valgrind it just
 * checks that both sides walked the tape to the same end state.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench_tape.h"
#include "emel/machine/machine.h"

const int *bench_tape;
unsigned long bench_void_actions;

extern const emel_machine_desc emel_io_read_desc, io_read_switch_desc;
extern const emel_machine_desc emel_io_mmap_desc, io_mmap_switch_desc;
extern const emel_machine_desc emel_tensor_residency_desc, tensor_residency_switch_desc;
extern const emel_machine_desc emel_load_job_desc, load_job_switch_desc;
extern const emel_machine_desc emel_io_staged_desc, io_staged_switch_desc;

typedef struct bench_machine {
  const emel_machine_desc *generated, *hand;
} bench_machine;

/* Contexts: every spec's context starts with its emel_machine, and the stubs
 * never look further; a generous zeroed block stands in for each. */
typedef struct any_ctx {
  emel_machine core;
  unsigned char rest[4096];
} any_ctx;

enum { TAPE_EVENTS = 200000 };

static unsigned long long rng = 0x9e3779b97f4a7c15ull;
static unsigned next_random(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (unsigned)(rng >> 11);
}

static const emel_transition *pick(const emel_machine_desc *d, int state) {
  int n = 0;
  for (int i = 0; i < d->transition_count; i++) n += d->transitions[i].from == state;
  if (n == 0) return NULL;
  int k = (int)(next_random() % (unsigned)n);
  for (int i = 0; i < d->transition_count; i++)
    if (d->transitions[i].from == state && k-- == 0) return &d->transitions[i];
  return NULL;
}

/* Writes the tape; returns its length and the state the walk ends in. */
static int walk(const bench_machine *b, int *tape, int *end_state) {
  const emel_machine_desc *d = b->generated;
  int state = d->start_state, n = 0;
  while (n < TAPE_EVENTS) {
    const emel_transition *t = pick(d, state);
    if (!t) break;
    tape[n++] = t->event;
    state = t->to;
    if (d->resting[state] && n >= TAPE_EVENTS - 64) break;
  }
  *end_state = state;
  return n;
}

/* Feeds the tape: the driver dispatches whatever event is next when the
 * machine rests, the stubs pop the outcomes in between. */
static int run(const emel_machine_desc *d, const int *tape, int n) {
  any_ctx ctx = {0};
  emel_machine_init(&ctx.core, d);
  bench_tape = tape;
  while (bench_tape < tape + n) {
    int event = *bench_tape++;
    if (emel_machine_dispatch(&ctx.core, d, &ctx, event) != EMEL_OK) {
      fprintf(stderr, "%s: refused event %d at %ld\n", d->name, event, (long)(bench_tape - tape));
      exit(1);
    }
  }
  return ctx.core.cs;
}

int main(void) {
  const bench_machine machines[] = {
      {&emel_io_read_desc, &io_read_switch_desc},
      {&emel_io_mmap_desc, &io_mmap_switch_desc},
      {&emel_tensor_residency_desc, &tensor_residency_switch_desc},
      {&emel_load_job_desc, &load_job_switch_desc},
      {&emel_io_staged_desc, &io_staged_switch_desc},
  };
  static int tape[TAPE_EVENTS];
  for (size_t i = 0; i < sizeof machines / sizeof machines[0]; i++) {
    const bench_machine *b = &machines[i];
    int end;
    const int n = walk(b, tape, &end);
    const int g = run(b->generated, tape, n), h = run(b->hand, tape, n);
    if (g != end || h != end) {
      fprintf(stderr, "%s: walk ended in %d, generated in %d, switch in %d\n", b->generated->name, end, g, h);
      return 1;
    }
    printf("%s_events: %d\n", b->generated->name, n);
  }
  return 0;
}
