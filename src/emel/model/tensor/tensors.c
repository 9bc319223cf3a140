/* The tensor table: fixed-capacity records, a name arena and a name index,
 * all allocated at creation. Requests are dispatched to each tensor's machine.
 * A model's table has neither arena nor index of its own: it borrows its
 * GGUF index's names and name table (tensors_shared.h). */
#include "residency.h"
#include "tensors_shared.h"
#include "job_access.h"
#include "emel/io/users.h"
#include "emel/io_strategy.h"
#include "emel/report.h"
#include "emel/util/struct_size.h"

#include <errno.h>
#include <string.h>

/* XXH3 compiled into this file (static, inline): no symbol or link
 * dependency leaves the library. */
#define XXH_INLINE_ALL
#include <xxhash.h>

struct emel_tensors {
  emel_platform_ops platform;
  emel_io *io;
  uint32_t capacity, count, resident;
  tensor_record *records;
  char *names; /* the arena (NULL when names are borrowed) */
  size_t name_bytes, name_used;
  emel_name_table own_names;     /* name -> record index, over the records' names */
  const emel_name_table *lookup; /* &own_names, or the shared table */
  /* emel_tensors_load_batch's window: requests, their results, and which
   * request (or BATCH_NOT_ASKED) each entry of the window got. */
  emel_io_request *batch_requests;
  emel_io_result *batch_results;
  uint32_t *batch_of;
  int as_job; /* a load job is calling: the tensors it holds are not busy to it */
  int destroying; /* EVICT ignores pins */
  /* Residency budget: owned bytes charged by resident tensors, reserved by a
   * batch window being admitted or a load job's buffer, and held by the
   * evictable ones, which form the LRU list (newest ... oldest). */
  uint64_t budget, owned_bytes, reserved_bytes, lru_bytes, budget_evictions;
  emel_budget_policy policy;
  uint32_t lru_newest, lru_oldest, pinned;
};

#define LRU_NONE UINT32_MAX

#define BATCH_NOT_ASKED UINT32_MAX
#define BATCH_REPEAT (1u << 31) /* batch_of: this entry repeats an earlier request */
#define BATCH_OVER_BUDGET (UINT32_MAX - 1) /* batch_of: the budget did not admit it, nothing asked */

/* The owner is the records array (allocated once, never moved). */
static const char *record_name_of(const void *owner, uint32_t index, size_t *len) {
  const tensor_record *r = &((const tensor_record *)owner)[index];
  *len = r->name_len;
  return r->name;
}

static void free_table(emel_tensors *t) {
  emel_platform_ops p = t->platform;
  if (t->records) p.free(p.user, t->records, (size_t)t->capacity * sizeof *t->records);
  if (t->names) p.free(p.user, t->names, t->name_bytes);
  emel_name_table_release(&t->own_names, &p);
  if (t->batch_requests) p.free(p.user, t->batch_requests, EMEL_TENSOR_BATCH_WINDOW * sizeof *t->batch_requests);
  if (t->batch_results) p.free(p.user, t->batch_results, EMEL_TENSOR_BATCH_WINDOW * sizeof *t->batch_results);
  if (t->batch_of) p.free(p.user, t->batch_of, EMEL_TENSOR_BATCH_WINDOW * sizeof *t->batch_of);
  p.free(p.user, t, sizeof *t);
}

/* Both kinds of table: `shared` NULL gives the table its own arena and index. */
static emel_status create(emel_tensors **out, const emel_tensors_config *given, const emel_name_table *shared,
                          const char **refused) {
  if (!out || !given) return EMEL_INVALID_ARGUMENT;
  *out = NULL;
  emel_tensors_config taken;
  *refused = "emel_tensors_config.struct_size";
  if (emel_struct_take(&taken, sizeof taken, given) != EMEL_OK) return EMEL_STRUCT_SIZE_UNKNOWN;
  *refused = "emel_tensors_config.platform";
  const emel_tensors_config *config = &taken;
  if (config->capacity == 0 || config->capacity > EMEL_TENSOR_MAX_CAPACITY) return EMEL_INVALID_ARGUMENT;
  if (config->budget_policy != EMEL_BUDGET_FAIL && config->budget_policy != EMEL_BUDGET_EVICT_LRU)
    return EMEL_INVALID_ARGUMENT;
  emel_platform_ops p;
  emel_status resolved = emel_platform_resolve(
      &p, config->platform ? config->platform : (config->io ? emel_io_platform(config->io) : NULL), NULL);
  if (resolved != EMEL_OK) return resolved;
  emel_tensors *t = p.alloc(p.user, sizeof *t, _Alignof(emel_tensors));
  if (!t) return EMEL_OUT_OF_MEMORY;
  memset(t, 0, sizeof *t);
  t->platform = p;
  t->io = config->io;
  t->capacity = config->capacity;
  t->budget = config->budget_bytes;
  t->policy = config->budget_policy;
  t->lru_newest = t->lru_oldest = LRU_NONE;
  t->records = p.alloc(p.user, (size_t)t->capacity * sizeof *t->records, _Alignof(tensor_record));
  emel_status s = t->records ? EMEL_OK : EMEL_OUT_OF_MEMORY;
  if (shared) {
    t->lookup = shared;
  } else {
    t->name_bytes = config->name_bytes ? config->name_bytes : (size_t)config->capacity * 64;
    t->names = p.alloc(p.user, t->name_bytes, 1);
    if (s == EMEL_OK && !t->names) s = EMEL_OUT_OF_MEMORY;
    if (s == EMEL_OK)
      s = emel_name_table_init(&t->own_names, &p, t->capacity, emel_name_seed_get(&p).value, record_name_of,
                               t->records);
    t->lookup = &t->own_names;
  }
  t->batch_requests =
      p.alloc(p.user, EMEL_TENSOR_BATCH_WINDOW * sizeof *t->batch_requests, _Alignof(emel_io_request));
  t->batch_results = p.alloc(p.user, EMEL_TENSOR_BATCH_WINDOW * sizeof *t->batch_results, _Alignof(emel_io_result));
  t->batch_of = p.alloc(p.user, EMEL_TENSOR_BATCH_WINDOW * sizeof *t->batch_of, _Alignof(uint32_t));
  if (s == EMEL_OK && (!t->batch_requests || !t->batch_results || !t->batch_of)) s = EMEL_OUT_OF_MEMORY;
  if (s != EMEL_OK) {
    free_table(t);
    return s;
  }
  emel_io_use(t->io);
  *out = t;
  return EMEL_OK;
}

emel_status emel_tensors_create(emel_tensors **out, const emel_tensors_config *config, emel_error *err) {
  const char *refused = NULL;
  const emel_status s = create(out, config, NULL, &refused);
  const int named = s == EMEL_STRUCT_SIZE_UNKNOWN || s == EMEL_PLATFORM_OPS_UNPAIRED;
  return emel_report_detail(err, s, named ? refused : NULL);
}

emel_status emel_tensors_create_shared(emel_tensors **out, const emel_tensors_config *config,
                                       const emel_name_table *names) {
  if (!names) return EMEL_INVALID_ARGUMENT;
  const char *refused;
  return create(out, config, names, &refused);
}

void emel_tensors_destroy(emel_tensors *t) {
  if (!t) return;
  t->as_job = 1; /* destruction releases every tensor, held and pinned ones too */
  t->destroying = 1;
  (void)emel_tensors_evict_all(t, NULL);
  emel_io *io = t->io;
  free_table(t);
  emel_io_unuse(io); /* last: may destroy the boundary the evictions went through */
}

static int name_valid(const char *name, size_t name_len) {
  return name_len > 0 && name_len <= EMEL_TENSOR_MAX_NAME && !memchr(name, '\0', name_len);
}

/* Appends a record named by `name` (which must stay valid as long as the table). */
static uint32_t append(emel_tensors *t, const char *name, size_t name_len) {
  tensor_record *r = &t->records[t->count];
  memset(r, 0, sizeof *r);
  emel_machine core;
  emel_machine_init(&core, &emel_tensor_residency_desc);
  r->cs = core.cs;
  r->name = name;
  r->name_len = (uint32_t)name_len;
  return t->count++;
}

static emel_status declare(emel_tensors *t, const char *name, size_t name_len, uint32_t *index) {
  if (!t || !name || !index) return EMEL_INVALID_ARGUMENT;
  /* A shared table (a model's) holds exactly its index's tensors: it is full. */
  if (t->lookup != &t->own_names) return EMEL_TENSOR_TABLE_FULL;
  if (!name_valid(name, name_len)) return EMEL_TENSOR_NAME_INVALID;
  if (t->count == t->capacity || t->name_bytes - t->name_used < name_len + 1) return EMEL_TENSOR_TABLE_FULL;
  uint32_t found;
  if (emel_name_table_find(&t->own_names, name, name_len, &found)) return EMEL_TENSOR_DUPLICATE_NAME;
  char *copy = t->names + t->name_used;
  memcpy(copy, name, name_len);
  copy[name_len] = '\0';
  t->name_used += name_len + 1;
  const uint32_t i = append(t, copy, name_len);
  /* Cannot be full or a duplicate: both were just checked. */
  (void)emel_name_table_insert(&t->own_names, i, NULL);
  *index = i;
  return EMEL_OK;
}

emel_status emel_tensors_declare(emel_tensors *t, const char *name, size_t name_len, uint32_t *index,
                                  emel_error *err) {
  return emel_report(err, declare(t, name, name_len, index));
}

emel_status emel_tensors_declare_shared(emel_tensors *t, uint32_t *index) {
  if (!t || !index || t->lookup == &t->own_names) return EMEL_INVALID_ARGUMENT;
  if (t->count == t->capacity) return EMEL_TENSOR_TABLE_FULL;
  if (t->count >= t->lookup->count) return EMEL_INVALID_ARGUMENT; /* the shared table has no name for it */
  size_t name_len;
  const char *name = t->lookup->name_of(t->lookup->owner, t->count, &name_len);
  if (!name_valid(name, name_len)) return EMEL_TENSOR_NAME_INVALID;
  *index = append(t, name, name_len);
  return EMEL_OK;
}

emel_status emel_tensors_find(const emel_tensors *t, const char *name, size_t name_len, uint32_t *index,
                              emel_error *err) {
  if (!t || !name || !index) return emel_report(err, EMEL_INVALID_ARGUMENT);
  uint32_t i;
  /* A shared table may name tensors not declared here yet. */
  if (!emel_name_table_find(t->lookup, name, name_len, &i) || i >= t->count)
    return emel_report(err, EMEL_TENSOR_UNKNOWN);
  *index = i;
  return emel_report(err, EMEL_OK);
}

uint64_t emel_tensors_name_probes(const emel_tensors *t) { return t->own_names.probes; }

/* The error of a call about tensor `index`: the tensor (k + 1) when the table
 * has it, and the file holding its bytes (file_index + 1) once it has a span. */
static emel_error tensor_error(const emel_tensors *t, uint32_t index, emel_status code, int os_errno) {
  emel_error e = {.code = code, .os_errno = code != EMEL_OK ? os_errno : 0};
  if (code == EMEL_OK || !t || index >= t->count) return e;
  e.tensor = index + 1;
  if (t->records[index].span.size > 0) e.file = t->records[index].span.file_index + 1;
  return e;
}

static emel_status report_tensor(emel_error *err, const emel_tensors *t, uint32_t index, emel_status code,
                                 int os_errno) {
  return emel_report_error(err, tensor_error(t, index, code, os_errno));
}

/* The state a tensor rests in, as the API names it. The machine's state is
 * the only record of residency: view.residency describes the bytes, never
 * whether there are any. A machine broken by an action defect (machine.h)
 * rests in no state the API names. */
static emel_tensor_state record_state(const tensor_record *r) {
  switch (r->cs) {
  case tensor_residency_state_unbound: return EMEL_TENSOR_UNBOUND;
  case tensor_residency_state_bound: return EMEL_TENSOR_BOUND;
  case tensor_residency_state_resident: return EMEL_TENSOR_RESIDENT;
  case tensor_residency_state_evicted: return EMEL_TENSOR_EVICTED;
  default: return EMEL_TENSOR_STATE_UNKNOWN;
  }
}

static int is_resident(const tensor_record *r) { return record_state(r) == EMEL_TENSOR_RESIDENT; }

/* Whether a query may read the tensor's bytes: a broken tensor answers
 * EMEL_INTERNAL to every call, as its machine does. */
static emel_status resident_bytes(const tensor_record *r) {
  if (r->cs == tensor_residency_ERROR_STATE) return EMEL_INTERNAL;
  return is_resident(r) ? EMEL_OK : EMEL_TENSOR_NOT_RESIDENT;
}

/* ---- the budget's accounts and LRU list (O(1) each) ---- */

static void lru_unlink(emel_tensors *t, uint32_t i) {
  tensor_record *r = &t->records[i];
  if (r->lru_newer != LRU_NONE) t->records[r->lru_newer].lru_older = r->lru_older;
  else t->lru_newest = r->lru_older;
  if (r->lru_older != LRU_NONE) t->records[r->lru_older].lru_newer = r->lru_newer;
  else t->lru_oldest = r->lru_newer;
  r->in_lru = 0;
  t->lru_bytes -= r->charged;
}

static void lru_push_newest(emel_tensors *t, uint32_t i) {
  tensor_record *r = &t->records[i];
  r->lru_newer = LRU_NONE;
  r->lru_older = t->lru_newest;
  if (t->lru_newest != LRU_NONE) t->records[t->lru_newest].lru_newer = i;
  else t->lru_oldest = i;
  t->lru_newest = i;
  r->in_lru = 1;
  t->lru_bytes += r->charged;
}

/* A use: the tensor becomes the last the LRU would evict. */
static void lru_touch(emel_tensors *t, uint32_t i) {
  if (!t->records[i].in_lru || t->lru_newest == i) return;
  lru_unlink(t, i);
  lru_push_newest(t, i);
}

/* Brings tensor i's charge and LRU membership up to date after anything that
 * can change them (its state, residency, pins, job hold, batch membership).
 * A tensor that stays evictable with the same charge keeps its place. */
static void account(emel_tensors *t, uint32_t i) {
  tensor_record *r = &t->records[i];
  const uint64_t charge = is_resident(r) && r->view.residency == EMEL_RESIDENCY_OWNED ? r->view.size : 0;
  const int evictable = charge > 0 && r->pins == 0 && !r->held && !r->in_batch;
  if (r->in_lru && (!evictable || charge != r->charged)) lru_unlink(t, i);
  t->owned_bytes = t->owned_bytes - r->charged + charge;
  r->charged = charge;
  if (evictable && !r->in_lru) lru_push_newest(t, i);
}

/* Runs one request through the tensor's machine and returns its status. */
static emel_status dispatch(emel_tensors *t, uint32_t index, int event, tensor_residency_ctx *m) {
  tensor_record *r = &t->records[index];
  /* A tensor a load job holds changes only through that job. */
  if (r->held && !t->as_job) return EMEL_TENSOR_BUSY;
  const int was_resident = is_resident(r);
  m->core.cs = r->cs;
  m->core.pending = EMEL_NO_EVENT;
  m->tensor = r;
  m->index = index;
  m->io = t->io;
  m->platform = &t->platform;
  m->table = t;
  m->force = t->destroying;
  m->status = EMEL_OK;
  m->os_errno = 0;
  emel_status s = emel_machine_dispatch(&m->core, &emel_tensor_residency_desc, m, event);
  r->cs = m->core.cs;
  if (s != EMEL_OK) m->os_errno = 0;
  t->resident += (uint32_t)is_resident(r) - (uint32_t)was_resident;
  account(t, index);
  return s != EMEL_OK ? s : m->status;
}

budget_verdict emel_tensors_budget_verdict(const emel_tensors *t, uint64_t need) {
  if (t->budget == 0 || need == 0) return BUDGET_VERDICT_FITS;
  if (need > t->budget) return BUDGET_VERDICT_EXCEEDED;
  const uint64_t room = t->budget - need, used = t->owned_bytes + t->reserved_bytes;
  if (used <= room) return BUDGET_VERDICT_FITS; /* exactly the remaining budget fits */
  if (t->policy != EMEL_BUDGET_EVICT_LRU) return BUDGET_VERDICT_EXCEEDED;
  /* Checked before evicting anything: no eviction for a load that fails anyway. */
  return used - t->lru_bytes <= room ? BUDGET_VERDICT_SHORT : BUDGET_VERDICT_EXCEEDED;
}

emel_error emel_tensors_make_room(emel_tensors *t, uint64_t need) {
  while (t->owned_bytes + t->reserved_bytes > t->budget - need) {
    const uint32_t victim = t->lru_oldest;
    if (victim == LRU_NONE) return (emel_error){.code = EMEL_BUDGET_EXCEEDED}; /* never after SHORT */
    tensor_residency_ctx m = {.status = EMEL_OK};
    const emel_status s = dispatch(t, victim, TENSOR_RESIDENCY_EV_EVICT, &m);
    /* A refused release leaves the victim resident (and oldest): stop, or this would spin. */
    if (s != EMEL_OK) return tensor_error(t, victim, s, m.os_errno);
    t->budget_evictions++;
  }
  return (emel_error){.code = EMEL_OK};
}

/* Admits `need` owned bytes (making room if the policy allows) and reserves
 * them; the caller gives them back once the tensor holding them is charged. */
static emel_error reserve(emel_tensors *t, uint64_t need) {
  emel_error e = {.code = EMEL_OK};
  switch (emel_tensors_budget_verdict(t, need)) {
  case BUDGET_VERDICT_FITS: break;
  case BUDGET_VERDICT_SHORT: e = emel_tensors_make_room(t, need); break;
  case BUDGET_VERDICT_EXCEEDED: e.code = EMEL_BUDGET_EXCEEDED; break;
  }
  if (e.code == EMEL_OK) t->reserved_bytes += need;
  return e;
}

emel_status emel_tensors_bind(emel_tensors *t, uint32_t index, const emel_tensor_span *span, emel_error *err) {
  if (!t || !span) return emel_report(err, EMEL_INVALID_ARGUMENT);
  if (index >= t->count) return emel_report(err, EMEL_TENSOR_UNKNOWN);
  tensor_residency_ctx m = {.span = span};
  const emel_status s = dispatch(t, index, TENSOR_RESIDENCY_EV_BIND_SPAN, &m);
  return report_tensor(err, t, index, s, m.os_errno);
}

emel_status emel_tensors_add(emel_tensors *t, const char *name, size_t name_len,
                             const emel_tensor_span *span, uint32_t *index, emel_error *err) {
  uint32_t i;
  emel_status s = emel_tensors_declare(t, name, name_len, &i, err);
  if (s != EMEL_OK) return s;
  if (index) *index = i;
  return emel_tensors_bind(t, i, span, err);
}

emel_status emel_tensors_load(emel_tensors *t, uint32_t index, const emel_load_options *given,
                              emel_tensor_view *view, emel_error *err) {
  if (!t || !given) return emel_report(err, EMEL_INVALID_ARGUMENT);
  emel_load_options options;
  if (emel_struct_take(&options, sizeof options, given) != EMEL_OK)
    return emel_report_error(err, (emel_error){.code = EMEL_STRUCT_SIZE_UNKNOWN,
                                               .detail = "emel_load_options.struct_size"});
  if (options.consumer && options.target) return emel_report(err, EMEL_INVALID_ARGUMENT);
  if (index >= t->count) return emel_report(err, EMEL_TENSOR_UNKNOWN);
  tensor_residency_ctx m = {.options = &options};
  emel_status s = dispatch(t, index, TENSOR_RESIDENCY_EV_LOAD, &m);
  if (s == EMEL_OK && view) *view = t->records[index].view;
  return report_tensor(err, t, index, s, m.os_errno);
}

/* Only a tensor whose machine would take ADOPT_RESIDENCY into `loading` is
 * asked of the boundary (the others refuse it on their own, with their own
 * code): the chart decides, through its generated table. */
static int accepts_load(const emel_tensors *t, const tensor_record *r) {
  if (r->held && !t->as_job) return 0; /* refused by dispatch: TENSOR_BUSY */
  return tensor_residency_target(r->cs, TENSOR_RESIDENCY_EV_ADOPT_RESIDENCY) ==
         tensor_residency_state_cutting_batch_shard;
}

/* One window: ask the boundary for every tensor that can take a load, then
 * dispatch ADOPT_RESIDENCY to each tensor's machine with its result. A
 * granted result no machine adopted (the same tensor twice in the window)
 * is released at once, so nothing is held that no tensor records. */
/* The request already made for `index` in this window, or BATCH_NOT_ASKED.
 * A window holds at most EMEL_TENSOR_BATCH_WINDOW requests: a scan is cheap. */
static uint32_t asked_for(const emel_tensors *t, uint32_t asked, uint32_t index) {
  for (uint32_t i = 0; i < asked; i++)
    if (t->batch_requests[i].tensor == index) return i;
  return BATCH_NOT_ASKED;
}

/* Returns the error of the window's first failure (in `indices` order). */
static emel_error load_window(emel_tensors *t, const uint32_t *indices, size_t base, size_t n,
                              const emel_load_options *options, emel_status *statuses) {
  uint32_t asked = 0;
  uint64_t window_reserved = 0;
  for (size_t k = 0; k < n; k++) {
    const uint32_t index = indices ? indices[base + k] : (uint32_t)(base + k);
    t->batch_of[k] = BATCH_NOT_ASKED;
    if (index >= t->count || !accepts_load(t, &t->records[index])) continue;
    /* A repeated index shares the first request: one residency per tensor. */
    const uint32_t earlier = asked_for(t, asked, index);
    if (earlier != BATCH_NOT_ASKED) {
      t->batch_of[k] = earlier | BATCH_REPEAT;
      continue;
    }
    /* The machine cuts the same slice again when it adopts the result: an
     * invalid or empty one it settles without any (so none is asked). */
    emel_tensor_slice slice;
    if (emel_tensor_cut(&t->records[index].span, options->shard_rank, options->shard_count, &slice) != EMEL_OK ||
        slice.size == 0)
      continue;
    /* The budget admits each tensor of the window before any is acquired,
     * evicting LRU tensors outside the batch if the policy allows. One it
     * cannot admit is not asked: its machine adopts BUDGET_EXCEEDED (also
     * when a victim's release failed: the victim's last error tells). */
    const uint64_t need = emel_tensor_owned_need(options, &slice);
    if (reserve(t, need).code != EMEL_OK) {
      t->batch_of[k] = BATCH_OVER_BUDGET;
      continue;
    }
    window_reserved += need;
    t->batch_requests[asked] = emel_tensor_io_request(&t->records[index], index, options, &slice);
    t->batch_of[k] = asked++;
  }
  if (asked > 0 && t->io) {
    emel_io_acquire_batch(t->io, t->batch_requests, t->batch_results, asked);
  } else {
    for (uint32_t i = 0; i < asked; i++)
      t->batch_results[i] = (emel_io_result){.error = {.code = EMEL_UNKNOWN_STRATEGY}};
  }
  /* Adoption charges what was reserved (a refused result, nothing). */
  t->reserved_bytes -= window_reserved;
  /* Never adopted: the machine refuses first, or settles an invalid or empty shard. */
  const emel_io_result not_asked = {.error = {.code = EMEL_INTERNAL}};
  const emel_io_result over_budget = {.error = {.code = EMEL_BUDGET_EXCEEDED}};
  emel_error first = {.code = EMEL_OK};
  for (size_t k = 0; k < n; k++) {
    const uint32_t index = indices ? indices[base + k] : (uint32_t)(base + k);
    const uint32_t of = t->batch_of[k];
    const emel_io_result *result = of == BATCH_NOT_ASKED     ? &not_asked
                                   : of == BATCH_OVER_BUDGET ? &over_budget
                                                             : &t->batch_results[of & ~BATCH_REPEAT];
    emel_status s = EMEL_TENSOR_UNKNOWN;
    int os_errno = 0;
    if (index < t->count) {
      tensor_residency_ctx m = {.options = options, .batch_result = result};
      s = dispatch(t, index, TENSOR_RESIDENCY_EV_ADOPT_RESIDENCY, &m);
      os_errno = m.os_errno;
      /* A granted residency no tensor adopted goes back; a repeat owns none. */
      if (s != EMEL_OK && result->error.code == EMEL_OK && !(of & BATCH_REPEAT))
        (void)emel_io_release(t->io, result->handle, NULL);
    }
    if (statuses) statuses[base + k] = s;
    if (first.code == EMEL_OK) first = tensor_error(t, index, s, os_errno);
  }
  return first;
}

static void batch_members(emel_tensors *t, const uint32_t *indices, size_t count, int member) {
  for (size_t k = 0; k < count; k++) {
    const uint32_t index = indices ? indices[k] : (uint32_t)k;
    if (index >= t->count || t->records[index].in_batch == member) continue;
    t->records[index].in_batch = (unsigned char)member;
    account(t, index);
  }
}

emel_status emel_tensors_load_batch(emel_tensors *t, const uint32_t *indices, size_t count,
                                    const emel_load_options *given, emel_status *statuses, emel_error *err) {
  if (!t || !given) return emel_report(err, EMEL_INVALID_ARGUMENT);
  emel_load_options options;
  if (emel_struct_take(&options, sizeof options, given) != EMEL_OK)
    return emel_report_error(err, (emel_error){.code = EMEL_STRUCT_SIZE_UNKNOWN,
                                               .detail = "emel_load_options.struct_size"});
  if (options.target) return emel_report(err, EMEL_INVALID_ARGUMENT);
  /* The batch's own tensors (resident already, or made resident by an
   * earlier window) are out of the LRU until it ends: a batch never evicts
   * one of its tensors to fit another. Then they are the most recently used. */
  batch_members(t, indices, count, 1);
  emel_error first = {.code = EMEL_OK};
  for (size_t base = 0; base < count; base += EMEL_TENSOR_BATCH_WINDOW) {
    const size_t n = count - base < EMEL_TENSOR_BATCH_WINDOW ? count - base : EMEL_TENSOR_BATCH_WINDOW;
    const emel_error e = load_window(t, indices, base, n, &options, statuses);
    if (first.code == EMEL_OK) first = e;
  }
  batch_members(t, indices, count, 0);
  return emel_report_error(err, first);
}

emel_status emel_tensors_bind_external(emel_tensors *t, uint32_t index, void *data, uint64_t size,
                                       emel_error *err) {
  if (!t) return emel_report(err, EMEL_INVALID_ARGUMENT);
  if (index >= t->count) return emel_report(err, EMEL_TENSOR_UNKNOWN);
  tensor_residency_ctx m = {.external_data = data, .external_size = size};
  const emel_status s = dispatch(t, index, TENSOR_RESIDENCY_EV_BIND_EXTERNAL, &m);
  return report_tensor(err, t, index, s, m.os_errno);
}

emel_status emel_tensors_evict(emel_tensors *t, uint32_t index, emel_error *err) {
  if (!t) return emel_report(err, EMEL_INVALID_ARGUMENT);
  if (index >= t->count) return emel_report(err, EMEL_TENSOR_UNKNOWN);
  tensor_residency_ctx m = {.status = EMEL_OK};
  const emel_status s = dispatch(t, index, TENSOR_RESIDENCY_EV_EVICT, &m);
  return report_tensor(err, t, index, s, m.os_errno);
}

emel_status emel_tensors_evict_all(emel_tensors *t, emel_error *err) {
  if (!t) return emel_report(err, EMEL_INVALID_ARGUMENT);
  emel_error first = {.code = EMEL_OK};
  for (uint32_t i = 0; i < t->count && t->resident > 0; i++) {
    if (!is_resident(&t->records[i])) continue; /* a held one is refused: TENSOR_BUSY */
    emel_error e;
    (void)emel_tensors_evict(t, i, &e);
    if (first.code == EMEL_OK) first = e;
  }
  return emel_report_error(err, first);
}

emel_status emel_tensors_view(const emel_tensors *t, uint32_t index, emel_tensor_view *view, emel_error *err) {
  if (!t || !view) return emel_report(err, EMEL_INVALID_ARGUMENT);
  if (index >= t->count) return emel_report(err, EMEL_TENSOR_UNKNOWN);
  const emel_status s = resident_bytes(&t->records[index]);
  if (s != EMEL_OK) return report_tensor(err, t, index, s, 0);
  *view = t->records[index].view;
  /* A view is a use. The LRU order is bookkeeping, not the table's contents;
   * every table is allocated non-const, so the cast is defined. */
  lru_touch((emel_tensors *)t, index);
  return emel_report(err, EMEL_OK);
}

/* ---- integrity: a query on the resident bytes, which changes no residency
 * (so it is no event of the tensor's machine) ---- */

typedef struct hash_job {
  const void *data;
  size_t size;
  uint64_t hash;
} hash_job;

static void hash_bytes(void *arg) {
  hash_job *j = arg;
  j->hash = XXH3_64bits(j->data, j->size);
}

/* After a fault in a mapped tensor: is its file now shorter than the span,
 * or no longer the file indexed? Looked at through a descriptor of its own. */
static int file_shrank(const emel_tensors *t, const tensor_record *r) {
  const emel_io_files *files = t->io ? emel_io_files_of(t->io) : NULL;
  if (!files || r->span.file_index >= files->count) return 0;
  const emel_io_file *f = &files->files[r->span.file_index];
  const emel_platform_ops *p = &t->platform;
  int fd = p->open(p->user, f->path, EMEL_OPEN_READ);
  if (fd < 0) return 0; /* cannot tell */
  emel_file_identity now;
  const int looked = p->file_identity(p->user, fd, &now) == 0;
  (void)p->close(p->user, fd);
  if (!looked) return 0;
  const emel_file_identity *want = &f->expected;
  const int other = f->has_expected && (now.size != want->size || now.device != want->device ||
                                        now.inode != want->inode || now.mtime_ns != want->mtime_ns);
  return other || now.size < r->span.offset + r->span.size;
}

static emel_status hash(emel_tensors *t, uint32_t index, uint64_t *xxh3) {
  if (!t || !xxh3) return EMEL_INVALID_ARGUMENT;
  if (index >= t->count) return EMEL_TENSOR_UNKNOWN;
  tensor_record *r = &t->records[index];
  const emel_status s = resident_bytes(r);
  if (s != EMEL_OK) return s;
  if ((uint64_t)(size_t)r->view.size != r->view.size) return EMEL_INVALID_ARGUMENT; /* never: it is resident */
  if (r->view.residency == EMEL_RESIDENCY_DELIVERED) return EMEL_STAGED_NO_BYTES; /* a consumer has them */
  lru_touch(t, index); /* reading the bytes is a use */
  hash_job job = {r->view.data, (size_t)r->view.size, 0};
  if (r->view.residency != EMEL_RESIDENCY_MAPPED) { /* memory the process owns cannot fault */
    hash_bytes(&job);
    *xxh3 = job.hash;
    return EMEL_OK;
  }
  const emel_platform_ops *p = &t->platform;
  const int g = p->guard(p->user, job.data, job.size, hash_bytes, &job);
  if (g == 0) {
    *xxh3 = job.hash;
    return EMEL_OK;
  }
  r->last_error.code = file_shrank(t, r) ? EMEL_FILE_CHANGED : EMEL_READ_FAILED;
  r->last_error.os_errno = -g;
  return r->last_error.code;
}

emel_status emel_tensors_hash(emel_tensors *t, uint32_t index, uint64_t *xxh3, emel_error *err) {
  const emel_status s = hash(t, index, xxh3);
  /* A fault's errno is in the record (hash set it); a refusal has none. */
  const int faulted = s == EMEL_FILE_CHANGED || s == EMEL_READ_FAILED;
  return report_tensor(err, t, index, s, faulted ? t->records[index].last_error.os_errno : 0);
}

emel_status emel_tensors_verify(emel_tensors *t, uint32_t index, uint64_t expected_xxh3, emel_error *err) {
  uint64_t got = 0;
  emel_status s = emel_tensors_hash(t, index, &got, err);
  if (s != EMEL_OK) return s;
  return report_tensor(err, t, index, got == expected_xxh3 ? EMEL_OK : EMEL_TENSOR_HASH_MISMATCH, 0);
}

emel_tensor_state emel_tensors_state(const emel_tensors *t, uint32_t index) {
  if (!t || index >= t->count) return EMEL_TENSOR_STATE_UNKNOWN;
  return record_state(&t->records[index]);
}

const emel_tensor_info *emel_tensors_info(const emel_tensors *t, uint32_t index, emel_tensor_info *out) {
  if (!t || !out || index >= t->count) return NULL;
  const tensor_record *r = &t->records[index];
  out->name = r->name;
  out->name_len = r->name_len;
  out->span = r->span;
  return out;
}

emel_error emel_tensors_last_error(const emel_tensors *t, uint32_t index) {
  if (!t || index >= t->count) return (emel_error){.code = EMEL_TENSOR_UNKNOWN, .os_errno = 0};
  const emel_error *e = &t->records[index].last_error;
  return tensor_error(t, index, e->code, e->os_errno);
}

uint32_t emel_tensors_count(const emel_tensors *t) { return t ? t->count : 0; }

uint32_t emel_tensors_resident_count(const emel_tensors *t) { return t ? t->resident : 0; }

uint64_t emel_tensors_resident_bytes(const emel_tensors *t) { return t ? t->owned_bytes : 0; }

emel_status emel_tensors_set_budget(emel_tensors *t, uint64_t budget_bytes, emel_budget_policy policy,
                                    emel_error *err) {
  if (!t || (policy != EMEL_BUDGET_FAIL && policy != EMEL_BUDGET_EVICT_LRU))
    return emel_report(err, EMEL_INVALID_ARGUMENT);
  t->budget = budget_bytes;
  t->policy = policy;
  return emel_report(err, EMEL_OK);
}

emel_status emel_tensors_pin(emel_tensors *t, uint32_t index, emel_error *err) {
  if (!t) return emel_report(err, EMEL_INVALID_ARGUMENT);
  if (index >= t->count) return emel_report(err, EMEL_TENSOR_UNKNOWN);
  tensor_record *r = &t->records[index];
  if (r->pins == UINT32_MAX) return emel_report_detail(err, EMEL_INVALID_ARGUMENT, "the tensor's pin count is at its maximum");
  if (r->pins++ == 0) t->pinned++;
  account(t, index);
  return emel_report(err, EMEL_OK);
}

emel_status emel_tensors_unpin(emel_tensors *t, uint32_t index, emel_error *err) {
  if (!t) return emel_report(err, EMEL_INVALID_ARGUMENT);
  if (index >= t->count) return emel_report(err, EMEL_TENSOR_UNKNOWN);
  tensor_record *r = &t->records[index];
  if (r->pins == 0) return emel_report_detail(err, EMEL_INVALID_ARGUMENT, "the tensor is not pinned");
  if (--r->pins == 0) t->pinned--;
  account(t, index); /* unpinned and resident: evictable again, as the newest */
  return emel_report(err, EMEL_OK);
}

uint32_t emel_tensors_pin_count(const emel_tensors *t, uint32_t index) {
  return t && index < t->count ? t->records[index].pins : 0;
}

emel_status emel_tensors_touch(emel_tensors *t, uint32_t index, emel_error *err) {
  if (!t) return emel_report(err, EMEL_INVALID_ARGUMENT);
  if (index >= t->count) return emel_report(err, EMEL_TENSOR_UNKNOWN);
  const emel_status s = resident_bytes(&t->records[index]);
  if (s != EMEL_OK) return report_tensor(err, t, index, s, 0);
  lru_touch(t, index);
  return emel_report(err, EMEL_OK);
}

emel_status emel_tensors_stats_get(const emel_tensors *t, emel_tensors_stats *out, emel_error *err) {
  if (!t || !out) return emel_report(err, EMEL_INVALID_ARGUMENT);
  if (out->struct_size < sizeof(size_t) || out->struct_size > sizeof *out)
    return emel_report_detail(err, EMEL_STRUCT_SIZE_UNKNOWN, "emel_tensors_stats.struct_size");
  const emel_tensors_stats s = {.struct_size = out->struct_size,
                                .budget_bytes = t->budget,
                                .budget_policy = t->policy,
                                .owned_bytes = t->owned_bytes,
                                .reserved_bytes = t->reserved_bytes,
                                .evictable_bytes = t->lru_bytes,
                                .resident = t->resident,
                                .pinned = t->pinned,
                                .budget_evictions = t->budget_evictions};
  memcpy(out, &s, out->struct_size); /* up to what the caller's header knew */
  return emel_report(err, EMEL_OK);
}

const char *emel_tensor_state_name(emel_tensor_state state) {
  switch (state) {
  case EMEL_TENSOR_UNBOUND: return "unbound";
  case EMEL_TENSOR_BOUND: return "bound";
  case EMEL_TENSOR_RESIDENT: return "resident";
  case EMEL_TENSOR_EVICTED: return "evicted";
  case EMEL_TENSOR_STATE_UNKNOWN: break;
  }
  return "unknown";
}

/* ---- load jobs (job_access.h) ---- */

emel_status emel_tensors_job_hold(emel_tensors *t, uint32_t index, int held) {
  if (!t || index >= t->count) return EMEL_TENSOR_UNKNOWN;
  tensor_record *r = &t->records[index];
  if (held && r->held) return EMEL_TENSOR_BUSY;
  r->held = held ? 1 : 0;
  account(t, index); /* a held tensor is the job's: out of the LRU until handed back */
  return EMEL_OK;
}

emel_status emel_tensors_job_load_batch(emel_tensors *t, const uint32_t *indices, size_t count,
                                        const emel_load_options *options, emel_status *statuses) {
  t->as_job = 1;
  const emel_status s = emel_tensors_load_batch(t, indices, count, options, statuses, NULL);
  t->as_job = 0;
  return s;
}

emel_status emel_tensors_job_evict(emel_tensors *t, uint32_t index) {
  t->as_job = 1;
  const emel_status s = emel_tensors_evict(t, index, NULL);
  t->as_job = 0;
  return s;
}

emel_status emel_tensors_job_adopt(emel_tensors *t, uint32_t index, void *data, size_t alloc_size,
                                   const emel_tensor_slice *slice, emel_tensor_view *view) {
  if (index >= t->count) return EMEL_TENSOR_UNKNOWN;
  tensor_record *r = &t->records[index];
  t->as_job = 1;
  tensor_residency_ctx m = {.external_data = data, .external_size = r->span.size};
  const emel_status s = dispatch(t, index, TENSOR_RESIDENCY_EV_BIND_EXTERNAL, &m);
  t->as_job = 0;
  if (s != EMEL_OK) return s;
  /* Bound like caller storage (strategy NONE: no io handle), but the table's to free. */
  r->owned = data;
  r->owned_size = alloc_size;
  r->view.residency = EMEL_RESIDENCY_OWNED;
  r->view.strategy = EMEL_STRATEGY_READ;
  if (slice) { /* a shard's slice: its bytes and rows, as a sliced load reports them */
    r->view.size = slice->size;
    r->view.row_begin = slice->row_begin;
    r->view.row_end = slice->row_end;
  }
  account(t, index); /* owned now: charged (the job gives back its reservation) */
  if (view) *view = r->view;
  return EMEL_OK;
}

emel_status emel_tensors_job_adopt_result(emel_tensors *t, uint32_t index, const emel_io_result *result,
                                          const emel_load_options *options, emel_tensor_view *view) {
  if (index >= t->count) return EMEL_TENSOR_UNKNOWN;
  t->as_job = 1;
  /* The job's own options: ADOPT_RESIDENCY cuts their slice again, the one the job acquired. */
  tensor_residency_ctx m = {.options = options, .batch_result = result};
  const emel_status s = dispatch(t, index, TENSOR_RESIDENCY_EV_ADOPT_RESIDENCY, &m);
  t->as_job = 0;
  if (s == EMEL_OK && view) *view = t->records[index].view;
  return s;
}

void emel_tensors_job_note(emel_tensors *t, uint32_t index, emel_status code, int os_errno) {
  if (!t || index >= t->count) return;
  t->records[index].last_error = (emel_error){.code = code, .os_errno = os_errno};
}

int emel_tensors_job_file_changed(const emel_tensors *t, uint32_t index) {
  return t && index < t->count && file_shrank(t, &t->records[index]);
}

emel_status emel_tensors_job_reserve(emel_tensors *t, uint64_t bytes, int *os_errno) {
  const emel_error e = reserve(t, bytes);
  *os_errno = e.os_errno;
  return e.code;
}

void emel_tensors_job_unreserve(emel_tensors *t, uint64_t bytes) {
  if (t) t->reserved_bytes -= bytes;
}

const emel_platform_ops *emel_tensors_platform(const emel_tensors *t) { return &t->platform; }

emel_io *emel_tensors_io(const emel_tensors *t) { return t->io; }
