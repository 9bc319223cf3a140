/* The read strategy: make a tensor span resident by copying it from the file.
 *
 * PREPARE makes one request ready to read: validate the request, path, file
 * index, span and target; pick buffered or direct I/O; open the file (once
 * per file and mode) and check that it is still the file indexed
 * (emel_io_file.expected: size, device, inode, modification time) before any
 * read; refuse a span past the end; reserve a pool slot; allocate an owned
 * buffer (advising a large one for huge pages) or adopt the caller's. The
 * machine then rests in `prepared`: READ_NOW transfers that one request at
 * once; READ_WITH_RUN leaves it to a batch, whose TRANSFER_RUN reads a run of
 * prepared members coalesced in file order.
 * The transfer is a loop of chunks: each read (a pread, or a completion of
 * the lane's ring) reports how it went and the chart decides (continue, retry
 * an interruption within a budget, or fail).
 * Every failure has its own route; a failure after the slot was taken releases
 * it (and the buffer) on that route. An early end of file and a finished
 * transfer look at the file again: one that changed under the load (truncated,
 * rewritten in place) fails the run with FILE_CHANGED, and its descriptors are
 * forgotten on settlement so the next load compares a fresh open. A finished transfer rests in
 * `transferred`, `transfer_failed` or `transfer_found_file_changed` until SETTLE_RUN, which grants the run
 * (only when every byte arrived) or discards it: a batch's runs may transfer
 * on worker threads, and only the calling thread touches the pool (see
 * include/emel/io_read.h). RELEASE returns a live residency; a stale handle is
 * refused.
 */
/* The tables of gen/io_read_machine.h are defined in this translation unit. */
#define EMEL_MACHINE_TABLES
#include "emel/io/read/read.h"

%%{
  machine io_read;
  alphtype int;
  access m->core.;

  # requests (READ_NOW / READ_WITH_RUN / SETTLE_RUN: to a machine resting after PREPARE / TRANSFER_RUN)
  export PREPARE = 1;
  export TRANSFER_RUN = 2;
  export RELEASE = 3;
  export READ_NOW = 4;
  export READ_WITH_RUN = 5;
  export SETTLE_RUN = 6;
  # outcomes reported by actions
  export REQUEST_VALID = 7;
  export REQUEST_INVALID = 8;
  export FILE_INDEX_VALID = 9;
  export FILE_INDEX_INVALID = 10;
  export PATH_VALID = 11;
  export PATH_INVALID = 12;
  export SPAN_VALID = 13;
  export SPAN_OVERFLOWS = 14;
  export TARGET_FITS = 15;
  export NO_TARGET = 16;
  export TARGET_TOO_SMALL = 17;
  export BUFFERED_IO = 18;
  export DIRECT_IO = 19;
  export DIRECT_UNALIGNED = 20;
  export DIRECT_KNOWN_REFUSED = 21;
  export FILE_ALREADY_OPEN = 22;
  export FILE_OPENED = 23;
  export DIRECT_REFUSED = 24;
  export OPEN_FAILED = 25;
  export FILE_UNCHANGED = 26;
  export STAT_FAILED = 27;
  export SPAN_INSIDE_FILE = 28;
  export SPAN_BEYOND_EOF = 29;
  export SLOT_RESERVED = 30;
  export POOL_EXHAUSTED = 31;
  export OWNED_STORAGE = 32;
  export EXTERNAL_STORAGE = 33;
  export STORAGE_READY = 34;
  export ALLOC_FAILED = 35;
  export CHUNK_READ = 36;
  export CHUNK_SHORT = 37;
  export CHUNK_INTERRUPTED = 38;
  export CHUNK_END_OF_FILE = 39;
  export CHUNK_FAILED = 40;
  export RETRY_ALLOWED = 41;
  export RETRIES_EXHAUSTED = 42;
  export CHUNK_DUE = 43;
  export TRANSFER_COMPLETE = 44;
  export KEEP_CACHE = 45;
  export DROP_CACHE = 46;
  export CACHE_DROPPED = 47;
  export CACHE_DROP_FAILED = 48;
  export HANDLE_LIVE = 49;
  export HANDLE_STALE = 50;
  export HUGE_BUFFER_READY = 51;
  export HUGE_PAGES_ADVISED = 52;
  export HUGE_PAGE_ADVICE_REFUSED = 53;
  export FILE_CHANGED = 54;
  export NOT_A_REGULAR_FILE = 55;
  export PREAD_ENGINE = 56;
  export RING_ENGINE = 57;
  export RING_WANTED = 58;
  export RING_OPENED = 59;
  export RING_UNAVAILABLE = 60;

  action check_request { EMEL_REPORT(m, emel_read_check_request(m)); }
  action check_file_index { EMEL_REPORT(m, emel_read_check_file_index(m)); }
  action check_path { EMEL_REPORT(m, emel_read_check_path(m)); }
  action check_span { EMEL_REPORT(m, emel_read_check_span(m)); }
  action check_target { EMEL_REPORT(m, emel_read_check_target(m)); }
  action choose_io_mode { EMEL_REPORT(m, emel_read_choose_io_mode(m)); }
  action open_direct { EMEL_REPORT(m, emel_read_open_direct(m)); }
  action open_buffered { EMEL_REPORT(m, emel_read_open_buffered(m)); }
  action count_direct_fallback { emel_read_count_direct_fallback(m); }
  action count_direct_unaligned { emel_read_count_direct_unaligned(m); }
  action identify_file { EMEL_REPORT(m, emel_read_identify_file(m)); }
  action close_fresh_descriptor { emel_read_close_fresh_descriptor(m); }
  action recheck_file { EMEL_REPORT(m, emel_read_recheck_file(m)); }
  action forget_file { emel_read_forget_file(m); }
  action check_span_in_file { EMEL_REPORT(m, emel_read_check_span_in_file(m)); }
  action reserve_slot { EMEL_REPORT(m, emel_read_reserve_slot(m)); }
  action choose_storage { EMEL_REPORT(m, emel_read_choose_storage(m)); }
  action allocate_buffer { EMEL_REPORT(m, emel_read_allocate_buffer(m)); }
  action adopt_target { EMEL_REPORT(m, emel_read_adopt_target(m)); }
  action advise_huge_pages { EMEL_REPORT(m, emel_read_advise_huge_pages(m)); }
  action count_huge_page_refusal { emel_read_count_huge_page_refusal(m); }
  action release_slot { emel_read_release_slot(m); }
  action start_single_run { emel_read_start_single_run(m); }
  action choose_engine { EMEL_REPORT(m, emel_read_choose_engine(m)); }
  action open_ring { EMEL_REPORT(m, emel_read_open_ring(m)); }
  action count_ring_fallback { emel_read_count_ring_fallback(m); }
  action start_ring_transfer { emel_read_start_ring_transfer(m); }
  action drain_ring { emel_read_drain_ring(m); }
  action place_data { emel_read_place_data(m); }
  action read_chunk { EMEL_REPORT(m, emel_read_chunk(m)); }
  action advance_transfer { EMEL_REPORT(m, emel_read_advance_transfer(m)); }
  action check_retry_budget { EMEL_REPORT(m, emel_read_check_retry_budget(m)); }
  action discard_run { emel_read_discard_run(m); }
  action check_cache_policy { EMEL_REPORT(m, emel_read_check_cache_policy(m)); }
  action drop_cache { EMEL_REPORT(m, emel_read_drop_cache(m)); }
  action count_cache_drop_failure { emel_read_count_cache_drop_failure(m); }
  action grant_run { emel_read_grant_run(m); }
  action check_handle { EMEL_REPORT(m, emel_read_check_handle(m)); }
  action release_residency { emel_read_release_residency(m); }
  action refuse_invalid_request { emel_read_refuse(m, EMEL_INVALID_REQUEST); }
  action refuse_invalid_file_index { emel_read_refuse(m, EMEL_INVALID_FILE_INDEX); }
  action refuse_invalid_path { emel_read_refuse(m, EMEL_INVALID_PATH); }
  action refuse_span_overflow { emel_read_refuse(m, EMEL_SPAN_OVERFLOW); }
  action refuse_target_too_small { emel_read_refuse(m, EMEL_READ_TARGET_TOO_SMALL); }
  action refuse_open_failed { emel_read_refuse(m, EMEL_OPEN_FAILED); }
  action refuse_stat_failed { emel_read_refuse(m, EMEL_STAT_FAILED); }
  action refuse_file_changed { emel_read_refuse(m, EMEL_FILE_CHANGED); }
  action refuse_not_a_regular_file { emel_read_refuse(m, EMEL_NOT_A_REGULAR_FILE); }
  action refuse_span_beyond_eof { emel_read_refuse(m, EMEL_SPAN_BEYOND_EOF); }
  action refuse_pool_exhausted { emel_read_refuse(m, EMEL_POOL_EXHAUSTED); }
  action refuse_alloc_failed { emel_read_refuse(m, EMEL_READ_ALLOC_FAILED); }
  action refuse_read_failed { emel_read_refuse(m, EMEL_READ_FAILED); }
  action refuse_unexpected_eof { emel_read_refuse(m, EMEL_READ_UNEXPECTED_EOF); }
  action refuse_invalid_handle { emel_read_refuse(m, EMEL_INVALID_HANDLE); }

  main := (
    start: idle: (
        PREPARE @check_request -> checking_request
      | TRANSFER_RUN @choose_engine -> choosing_engine
      | RELEASE @check_handle -> checking_handle
    ),
    checking_request: (
        REQUEST_VALID @check_file_index -> checking_file_index
      | REQUEST_INVALID @refuse_invalid_request -> idle
    ),
    checking_file_index: (
        FILE_INDEX_VALID @check_path -> checking_path
      | FILE_INDEX_INVALID @refuse_invalid_file_index -> idle
    ),
    checking_path: (
        PATH_VALID @check_span -> checking_span
      | PATH_INVALID @refuse_invalid_path -> idle
    ),
    checking_span: (
        SPAN_VALID @check_target -> checking_target
      | SPAN_OVERFLOWS @refuse_span_overflow -> idle
    ),
    checking_target: (
        TARGET_FITS @choose_io_mode -> choosing_io_mode
      | NO_TARGET @choose_io_mode -> choosing_io_mode
      | TARGET_TOO_SMALL @refuse_target_too_small -> idle
    ),
    choosing_io_mode: (
        BUFFERED_IO @open_buffered -> opening_buffered
      | DIRECT_IO @open_direct -> opening_direct
      | DIRECT_UNALIGNED @count_direct_unaligned @open_buffered -> opening_buffered
      | DIRECT_KNOWN_REFUSED @count_direct_fallback @open_buffered -> opening_buffered
    ),
    # a descriptor is kept only once its file proved to be the indexed one
    opening_direct: (
        FILE_ALREADY_OPEN @check_span_in_file -> checking_span_in_file
      | FILE_OPENED @identify_file -> identifying
      | DIRECT_REFUSED @count_direct_fallback @open_buffered -> opening_buffered
      | OPEN_FAILED @refuse_open_failed -> idle
    ),
    opening_buffered: (
        FILE_ALREADY_OPEN @check_span_in_file -> checking_span_in_file
      | FILE_OPENED @identify_file -> identifying
      | OPEN_FAILED @refuse_open_failed -> idle
    ),
    # before any read: the file opened is a regular file, still the one indexed
    identifying: (
        FILE_UNCHANGED @check_span_in_file -> checking_span_in_file
      | FILE_CHANGED @close_fresh_descriptor @refuse_file_changed -> idle
      | STAT_FAILED @close_fresh_descriptor @refuse_stat_failed -> idle
      | NOT_A_REGULAR_FILE @close_fresh_descriptor @refuse_not_a_regular_file -> idle
    ),
    checking_span_in_file: (
        SPAN_INSIDE_FILE @reserve_slot -> reserving_slot
      | SPAN_BEYOND_EOF @refuse_span_beyond_eof -> idle
    ),
    reserving_slot: (
        SLOT_RESERVED @choose_storage -> choosing_storage
      | POOL_EXHAUSTED @refuse_pool_exhausted -> idle
    ),
    choosing_storage: (
        OWNED_STORAGE @allocate_buffer -> placing_storage
      | EXTERNAL_STORAGE @adopt_target -> placing_storage
    ),
    placing_storage: (
        STORAGE_READY -> prepared
      | HUGE_BUFFER_READY @advise_huge_pages -> advising_huge_pages
      | ALLOC_FAILED @release_slot @refuse_alloc_failed -> idle
    ),
    advising_huge_pages: (
        HUGE_PAGES_ADVISED -> prepared
      | HUGE_PAGE_ADVICE_REFUSED @count_huge_page_refusal -> prepared
    ),
    # rests: the member holds its slot and storage; the caller reads it now
    # (one request) or with the run it joins (a batch: TRANSFER_RUN later)
    prepared: (
        READ_NOW @start_single_run @choose_engine -> choosing_engine
      | READ_WITH_RUN -> idle
    ),
    # pread lanes, or the lane's ring (opened on its first transfer; where the
    # platform has none, the lane reads with pread from then on, counted)
    choosing_engine: (
        PREAD_ENGINE @read_chunk -> reading_chunk
      | RING_ENGINE @start_ring_transfer @read_chunk -> reading_chunk
      | RING_WANTED @open_ring -> opening_ring
    ),
    opening_ring: (
        RING_OPENED @start_ring_transfer @read_chunk -> reading_chunk
      | RING_UNAVAILABLE @count_ring_fallback @read_chunk -> reading_chunk
    ),
    # one chunk: a pread, or the ring's completion of the read at the transfer's
    # position (the ring keeps the next ones in flight); a transfer that ends
    # early first waits for every read still in flight (drain_ring): the kernel
    # must not write a buffer the settlement frees
    reading_chunk: (
        CHUNK_READ @advance_transfer -> advancing
      | CHUNK_SHORT @advance_transfer -> advancing
      | CHUNK_INTERRUPTED @check_retry_budget -> retrying
      | CHUNK_END_OF_FILE @drain_ring @recheck_file -> checking_file_at_end
      | CHUNK_FAILED @drain_ring @refuse_read_failed -> transfer_failed
    ),
    retrying: (
        RETRY_ALLOWED @read_chunk -> reading_chunk
      | RETRIES_EXHAUSTED @drain_ring @refuse_read_failed -> transfer_failed
    ),
    # every read consumed: nothing is in flight
    advancing: (
        CHUNK_DUE @read_chunk -> reading_chunk
      | TRANSFER_COMPLETE @place_data @recheck_file -> checking_file_after_transfer
    ),
    # the file ended early: truncated under the load, or (unchanged) a device that lies
    checking_file_at_end: (
        FILE_UNCHANGED @refuse_unexpected_eof -> transfer_failed
      | FILE_CHANGED @refuse_file_changed -> transfer_found_file_changed
      | STAT_FAILED @refuse_stat_failed -> transfer_failed
    ),
    # every byte arrived: were they the indexed file's (not rewritten in place meanwhile)?
    checking_file_after_transfer: (
        FILE_UNCHANGED @check_cache_policy -> finishing
      | FILE_CHANGED @refuse_file_changed -> transfer_found_file_changed
      | STAT_FAILED @refuse_stat_failed -> transfer_failed
    ),
    finishing: (
        KEEP_CACHE -> transferred
      | DROP_CACHE @drop_cache -> dropping_cache
    ),
    dropping_cache: (
        CACHE_DROPPED -> transferred
      | CACHE_DROP_FAILED @count_cache_drop_failure -> transferred
    ),
    transferred: (
        SETTLE_RUN @grant_run -> idle
    ),
    transfer_failed: (
        SETTLE_RUN @discard_run -> idle
    ),
    # the next load reopens the file and compares it again
    transfer_found_file_changed: (
        SETTLE_RUN @discard_run @forget_file -> idle
    ),
    checking_handle: (
        HANDLE_LIVE @release_residency -> idle
      | HANDLE_STALE @refuse_invalid_handle -> idle
    )
  );
}%%

static void io_read_exec(void *ctx, int event) {
  io_read_ctx *m = ctx;
  const int *p = &event;
  const int *pe = p + 1;
EMEL_GENERATED_EXEC_BEGIN
  %% write exec;
EMEL_GENERATED_EXEC_END
}

const emel_machine_desc emel_io_read_desc = EMEL_MACHINE_DESC(io_read);
