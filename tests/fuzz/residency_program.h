/* The byte encoding of fuzz_residency's programs, shared with the seed writer
 * (make_seeds.c) so committed seeds say what they mean.
 *
 * Header: SHAPE0 SHAPE1 CONFIG PARAMS, one byte per file, three per tensor:
 *   SHAPE0  files - 1 (mod 3)
 *   SHAPE1  tensors - 1 (low 4 bits) | alignment index << 4 (1, 32, 64, 4096)
 *           | RP_NO_MAP (the platform cannot map)
 *   CONFIG  RP_NO_MMAP | RP_NO_READ | RP_SMALL_POOLS | RP_SMALL_CHUNKS | RP_ALIGN_4096
 *           | RP_SMALL_HUGE_PAGES (read buffers of 4096+ bytes get huge-page advice)
 *           | RP_BUDGET_OPS (the residency budget's operations join the opcodes;
 *             without it programs decode as before the budget existed)
 *   PARAMS  mmap pool - 1 (bits 0-1), read pool - 1 (bits 2-3) with RP_SMALL_POOLS;
 *           chunk 512 << (bits 4-5) with RP_SMALL_CHUNKS
 *   file    low 3 bits 5: missing, 6: NUL in its path; RP_TRUNCATE cuts
 *           ((byte >> 4) + 1) * 97 bytes off its end
 *   tensor  size - 1 (u16 little-endian, mod 12000), then file (mod files)
 *           | 7 << 2 to leave it unbound | gap in alignment units << 5
 * Operations follow, an opcode byte (mod RP_OP_COUNT) and its arguments:
 *   LOAD i strategy flags target     EVICT i      BIND_EXTERNAL i mode
 *   BIND i mode                      ACQUIRE shape strategy flags (tensor target)...
 *   RELEASE handle...                ADVISE handle... mode [offset len] advice
 *   FAULT op nth kind [eof len16]    CLEAR        EVICT_ALL
 *   CUT_FILE file cut16 (0: back to its full length)
 *   LOAD_BATCH count-1 strategy flags i... (emel_tensors_load_batch; an index may repeat)
 *   JOB sub: CREATE shape strategy flags chunk i... [priority]   STEP budget/512
 *            START how (bit 0: cancel at once, bit 1: wait 1 ms at a time)
 *            CANCEL   WAIT   DESTROY   STEP_ALL (no budget limit)
 * With RP_BUDGET_OPS also (opcode mod RP_OP_COUNT_BUDGET):
 *   BUDGET bytes16 scale policy (budget = bytes16 << (scale & 3); policy bit 0: evict LRU)
 *   PIN i      UNPIN i      TOUCH i
 * See fuzz_residency.c for each argument. */
#ifndef EMEL_FUZZ_RESIDENCY_PROGRAM_H
#define EMEL_FUZZ_RESIDENCY_PROGRAM_H

enum {
  RP_NO_MAP = 1 << 6,
  RP_NO_MMAP = 1 << 0,
  RP_NO_READ = 1 << 1,
  RP_SMALL_POOLS = 1 << 2,
  RP_SMALL_CHUNKS = 1 << 3,
  RP_ALIGN_4096 = 1 << 4,
  RP_SMALL_HUGE_PAGES = 1 << 5,
  RP_BUDGET_OPS = 1 << 6,
  RP_TRUNCATE = 1 << 3,
  RP_UNBOUND = 7 << 2
};

/* strategy argument (low 2 bits) */
enum { RP_MMAP = 0, RP_READ = 1, RP_NONE = 2, RP_BOGUS_STRATEGY = 3 };
/* target argument (low 2 bits); misaligned by 1 + (byte >> 2). In an
 * ACQUIRE request also: a file index past the table, an offset that overflows. */
enum { RP_NO_TARGET = 0, RP_TARGET = 1, RP_TARGET_TOO_SMALL = 2, RP_TARGET_MISALIGNED = 3 };
enum { RP_OFFSET_OVERFLOW = 0x20, RP_BAD_FILE_INDEX = 0x40 };
/* flags argument: EMEL_LOAD_* in the low 4 bits; this bit adds an unknown flag */
enum { RP_UNKNOWN_FLAG = 0x80 };
/* ACQUIRE shape: count - 1 (low 3 bits) | RP_SINGLE (count 1: emel_io_acquire) | RP_MIXED (a strategy per request) */
enum { RP_SINGLE = 8, RP_MIXED = 16 };
/* handle argument (low 2 bits): 0/1 held (index byte >> 2), 2 stale, 3 forged (strategy slot gen16) */
enum { RP_HELD = 0, RP_STALE = 2, RP_FORGED = 3 };
/* ADVISE mode: whole, (offset16 len16) inside, (offset16 len16) anything, one past the end */
enum { RP_WHOLE = 0, RP_INSIDE = 1, RP_ANY_RANGE = 2, RP_PAST_END = 3 };
/* FAULT kind: errno index (mod 10) | (count - 1) << 4 | RP_STORM (20 calls) | RP_SHORT (reads) */
enum { RP_SHORT = 8, RP_STORM = 0xC0 };
enum { RP_EIO, RP_ENOMEM, RP_EMFILE, RP_EACCES, RP_EINTR, RP_EAGAIN, RP_EINVAL, RP_ENOENT, RP_EPERM, RP_ENOSPC };

enum {
  RP_LOAD, RP_EVICT, RP_BIND_EXTERNAL, RP_BIND, RP_ACQUIRE, RP_RELEASE, RP_ADVISE, RP_FAULT, RP_CLEAR,
  RP_EVICT_ALL, RP_CUT_FILE, RP_LOAD_BATCH, RP_JOB, RP_OP_COUNT,
  /* only with RP_BUDGET_OPS */
  RP_BUDGET = RP_OP_COUNT, RP_PIN, RP_UNPIN, RP_TOUCH, RP_OP_COUNT_BUDGET
};

/* JOB sub-operations (mod RP_JOB_OP_COUNT) */
enum { RP_JOB_CREATE, RP_JOB_STEP, RP_JOB_START, RP_JOB_CANCEL, RP_JOB_WAIT, RP_JOB_DESTROY, RP_JOB_STEP_ALL, RP_JOB_OP_COUNT };
/* CREATE shape: count - 1 (low 4 bits) | every tensor | continue on failure | a priority (one index byte) */
enum { RP_JOB_ALL = 0x10, RP_JOB_CONTINUE = 0x20, RP_JOB_PRIORITY = 0x40 };

#endif
