/* Internals of the staged strategy shared by the spec, the actions and the
 * entry points (staged.c). */
#ifndef EMEL_IO_STAGED_INTERNAL_H
#define EMEL_IO_STAGED_INTERNAL_H

#include <stdatomic.h>

#include "emel/io.h"
#include "emel/io_strategy.h"
#include "emel/io_staged.h"
#include "emel/machine/machine.h"
#include "emel/io/ring/ring.h"
#include "io_staged_machine.h" /* events, states, action prototypes: generated from the spec */

enum staged_mode { STAGED_BUFFERED = 0, STAGED_DIRECT = 1 };

enum staged_slot_state { STAGED_SLOT_FREE = 0, STAGED_SLOT_RESERVED = 1, STAGED_SLOT_LIVE = 2 };

/* One residency: what release needs (the consumer and the tensor). */
typedef struct staged_slot {
  uint32_t generation;
  uint32_t next_free;
  int state;
  uint32_t tensor;
  emel_staged_release_fn release; /* copied from the consumer at PREPARE */
  void *user;
} staged_slot;

/* Per model file, as the read strategy keeps it: one descriptor per mode,
 * each checked against what the file was when first opened. */
typedef struct staged_file {
  int fd[2];
  uint64_t size;
  int size_known;
  emel_file_identity seen;
  int direct_refused;
} staged_file;

/* One request of the current load. */
typedef struct staged_member {
  const emel_io_request *request;
  emel_io_result *result;
  emel_staged_consumer consumer_copy; /* the members this library knows, the rest zero */
  uint32_t slot;
  int mode;
  int fd;
  uint64_t consumed;  /* bytes the consumer took */
  emel_error error;   /* its own failure, else OK */
} staged_member;

/* One window of the ring as the reader publishes it (its bytes are ready). */
typedef struct staged_window {
  size_t member;        /* index into self->members */
  uint64_t offset;      /* in the tensor */
  uint64_t bytes;
  const unsigned char *data;
} staged_window;

enum staged_engine { STAGED_ENGINE_PREAD = 0, STAGED_ENGINE_RING = 1 };

typedef struct io_staged io_staged;

struct io_staged {
  emel_platform_ops platform;
  emel_io *io;
  const emel_io_files *files;
  staged_file *file_state;
  uint32_t file_capacity;
  staged_slot *slots;
  uint32_t slot_capacity;
  uint32_t free_head; /* slot index + 1; 0: pool exhausted */
  size_t live;
  size_t block;        /* direct I/O alignment: the page size */
  unsigned char **ring; /* ring_count buffers of buffer_size bytes */
  uint32_t ring_count;
  size_t buffer_size;
  uint64_t window_bytes; /* payload per window: buffer_size - block (room for direct alignment) */
  int want_thread;
  int events[2];        /* [0] a window was filled, [1] a buffer was freed; -1 until opened */
  int events_refused;   /* event_open failed once: every later stream is inline */
  staged_member *members; /* EMEL_IO_STAGED_BATCH_WINDOW */
  size_t member_count;
  staged_window windows[EMEL_IO_STAGED_MAX_BUFFERS];
  /* The stream: windows [0, total) of the members in order. */
  uint64_t total_windows;
  _Atomic uint64_t filled; /* windows published by the reader */
  _Atomic uint64_t freed;  /* windows the consumer is done with */
  _Atomic int stop;        /* the consumer wants no more windows */
  /* The window the reader could not deliver (UINT64_MAX: none yet) and why:
   * kept apart from the ring, whose slot for it may still be the consumer's. */
  _Atomic uint64_t failed_at;
  emel_error failure;
  int inline_reader;       /* this stream has no reader thread */
  int reader_running;      /* a reader thread was started and not joined yet */
  int reader_defect;       /* a FILL broke its machine (set before failed_at is published) */
  uintptr_t thread;
  /* The reader's ring (one reader at a time: the thread, or an inline stream's
   * caller). Opened on the first window that wants it, kept until destroy;
   * nothing is in flight between windows. Its circle holds the window's
   * reads in file order, the head the one at the window's position. */
  emel_ring reads;        /* depth 0: pread only (EMEL_IO_STAGED_NO_RING) */
  uint64_t ring_request;  /* whole blocks */
  uint64_t ring_fill_at;  /* the next byte (from file_start) no read asks for yet */
  emel_io_staged_stats stats;
  emel_io_staged_stats reader_stats; /* the reader thread's counters, merged after the join */
  int broken;
};

/* The context of one dispatch: a PREPARE or RELEASE on the calling thread,
 * the stream (STREAM, calling thread), or one window's FILL (the reader). */
struct io_staged_ctx {
  emel_machine core;
  io_staged *self;
  staged_member *member; /* PREPARE */
  /* STREAM: the next window to consume */
  uint64_t next;
  /* FILL: the window being read (STREAM: the member of window `next`) */
  uint64_t window;       /* its number in the stream */
  size_t fill_member;
  uint64_t fill_offset;  /* in the tensor */
  uint64_t fill_bytes;
  uint64_t file_start;   /* first file byte read (direct: block-aligned) */
  uint64_t need;         /* bytes from file_start that must arrive */
  uint64_t asked;        /* bytes read so far asks for (direct: whole blocks) */
  uint64_t got;          /* bytes arrived */
  uint64_t from;         /* where the last read started (direct: got rounded down to a block) */
  int64_t last;          /* the last pread's return */
  uint32_t retries;
  int engine;            /* enum staged_engine */
  emel_io_staged_stats *stats; /* the reader's or the caller's counters */
  /* RELEASE */
  emel_io_handle handle;
  emel_error error;
};

/* Where window `w` of the stream is: its member, offset in the tensor and length. */
void emel_staged_locate(const io_staged *self, uint64_t w, size_t *member, uint64_t *offset, uint64_t *bytes);

/* Runs the FILL of window `w` on a context of its own (the reader thread, or
 * the calling thread of an inline stream). */
void emel_staged_fill(io_staged *self, uint64_t w, emel_io_staged_stats *stats);

#endif
