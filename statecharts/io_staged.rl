/* The staged strategy: hand a tensor span to a consumer, window by window,
 * through a bounded ring of staging buffers.
 *
 * PREPARE makes one request ready to stream: validate the request, its
 * consumer, file index, path and span; pick buffered or direct I/O (falling
 * back to buffered where the filesystem refuses O_DIRECT); open the file once
 * per mode and check it is still the file indexed before any read; refuse a
 * span past the end; reserve a residency slot. The member rests in `prepared`
 * until it joins the stream (JOIN_STREAM).
 * STREAM runs on the calling thread: start the reader (a thread, or inline
 * when none can be had), then await each window, give it to the consumer and
 * free its buffer, until every window was consumed or one failed (the
 * reader's error, the consumer's, or a handoff that cannot be waited for);
 * stopping the reader joins it and settles every member (granted when all its
 * bytes were consumed, else its error).
 * FILL runs once per window on the reader: wait for a free buffer (the
 * backpressure: a full ring stalls the reader), read the window in chunks
 * (short reads continue, interruptions retry within a budget), look at the
 * file again, then publish the window or its failure.
 * RELEASE returns a live residency (calling the consumer's release); a stale
 * handle is refused.
 */
/* The tables of gen/io_staged_machine.h are defined in this translation unit. */
#define EMEL_MACHINE_TABLES
#include "emel/io/staged/staged.h"

%%{
  machine io_staged;
  alphtype int;
  access m->core.;

  # requests
  export PREPARE = 1;
  export JOIN_STREAM = 2;
  export STREAM = 3;
  export FILL = 4;
  export RELEASE = 5;
  # outcomes reported by actions
  export REQUEST_VALID = 6;
  export REQUEST_INVALID = 7;
  export CONSUMER_VALID = 8;
  export CONSUMER_MISSING = 9;
  export CONSUMER_INVALID = 10;
  export FILE_INDEX_VALID = 11;
  export FILE_INDEX_INVALID = 12;
  export PATH_VALID = 13;
  export PATH_INVALID = 14;
  export SPAN_VALID = 15;
  export SPAN_OVERFLOWS = 16;
  export BUFFERED_IO = 17;
  export DIRECT_IO = 18;
  export DIRECT_KNOWN_REFUSED = 19;
  export FILE_ALREADY_OPEN = 20;
  export FILE_OPENED = 21;
  export DIRECT_REFUSED = 22;
  export OPEN_FAILED = 23;
  export FILE_UNCHANGED = 24;
  export FILE_CHANGED = 25;
  export STAT_FAILED = 26;
  export NOT_A_REGULAR_FILE = 27;
  export SPAN_INSIDE_FILE = 28;
  export SPAN_BEYOND_EOF = 29;
  export SLOT_RESERVED = 30;
  export POOL_EXHAUSTED = 31;
  export READER_STARTED = 32;
  export READER_INLINE = 33;
  export WINDOW_READY = 34;
  export WINDOW_FAILED = 35;
  export HANDOFF_FAILED = 36;
  export CONSUMED = 37;
  export CONSUMER_FAILED = 38;
  export WINDOWS_LEFT = 39;
  export ALL_CONSUMED = 40;
  export READER_STOPPED = 41;
  export READER_JOIN_FAILED = 42;
  export BUFFER_FREE = 43;
  export STOP_REQUESTED = 44;
  export CHUNK_READ = 45;
  export CHUNK_SHORT = 46;
  export CHUNK_INTERRUPTED = 47;
  export CHUNK_END_OF_FILE = 48;
  export CHUNK_FAILED = 49;
  export RETRY_ALLOWED = 50;
  export RETRIES_EXHAUSTED = 51;
  export CHUNK_DUE = 52;
  export WINDOW_COMPLETE = 53;
  export HANDLE_LIVE = 54;
  export HANDLE_STALE = 55;

  action check_request { EMEL_REPORT(m, emel_staged_check_request(m)); }
  action check_consumer { EMEL_REPORT(m, emel_staged_check_consumer(m)); }
  action check_file_index { EMEL_REPORT(m, emel_staged_check_file_index(m)); }
  action check_path { EMEL_REPORT(m, emel_staged_check_path(m)); }
  action check_span { EMEL_REPORT(m, emel_staged_check_span(m)); }
  action choose_io_mode { EMEL_REPORT(m, emel_staged_choose_io_mode(m)); }
  action open_direct { EMEL_REPORT(m, emel_staged_open_direct(m)); }
  action open_buffered { EMEL_REPORT(m, emel_staged_open_buffered(m)); }
  action count_direct_fallback { emel_staged_count_direct_fallback(m); }
  action identify_file { EMEL_REPORT(m, emel_staged_identify_file(m)); }
  action close_fresh_descriptor { emel_staged_close_fresh_descriptor(m); }
  action check_span_in_file { EMEL_REPORT(m, emel_staged_check_span_in_file(m)); }
  action reserve_slot { EMEL_REPORT(m, emel_staged_reserve_slot(m)); }
  action start_reader { EMEL_REPORT(m, emel_staged_start_reader(m)); }
  action count_inline_stream { emel_staged_count_inline_stream(m); }
  action await_window { EMEL_REPORT(m, emel_staged_await_window(m)); }
  action take_window_error { emel_staged_take_window_error(m); }
  action consume_window { EMEL_REPORT(m, emel_staged_consume_window(m)); }
  action free_window { EMEL_REPORT(m, emel_staged_free_window(m)); }
  action stop_reader { EMEL_REPORT(m, emel_staged_stop_reader(m)); }
  action count_join_failure { emel_staged_count_join_failure(m); }
  action settle_stream { emel_staged_settle_stream(m); }
  action await_free_buffer { EMEL_REPORT(m, emel_staged_await_free_buffer(m)); }
  action read_chunk { EMEL_REPORT(m, emel_staged_read_chunk(m)); }
  action count_short_read { emel_staged_count_short_read(m); }
  action advance_window { EMEL_REPORT(m, emel_staged_advance_window(m)); }
  action check_retry_budget { EMEL_REPORT(m, emel_staged_check_retry_budget(m)); }
  action recheck_file { EMEL_REPORT(m, emel_staged_recheck_file(m)); }
  action publish_window { emel_staged_publish_window(m); }
  action publish_failure { emel_staged_publish_failure(m); }
  action check_handle { EMEL_REPORT(m, emel_staged_check_handle(m)); }
  action release_residency { emel_staged_release_residency(m); }
  action refuse_invalid_request { emel_staged_refuse(m, EMEL_INVALID_REQUEST); }
  action refuse_no_consumer { emel_staged_refuse(m, EMEL_STAGED_NO_CONSUMER); }
  action refuse_invalid_file_index { emel_staged_refuse(m, EMEL_INVALID_FILE_INDEX); }
  action refuse_invalid_path { emel_staged_refuse(m, EMEL_INVALID_PATH); }
  action refuse_span_overflow { emel_staged_refuse(m, EMEL_SPAN_OVERFLOW); }
  action refuse_open_failed { emel_staged_refuse(m, EMEL_OPEN_FAILED); }
  action refuse_file_changed { emel_staged_refuse(m, EMEL_FILE_CHANGED); }
  action refuse_stat_failed { emel_staged_refuse(m, EMEL_STAT_FAILED); }
  action refuse_not_a_regular_file { emel_staged_refuse(m, EMEL_NOT_A_REGULAR_FILE); }
  action refuse_span_beyond_eof { emel_staged_refuse(m, EMEL_SPAN_BEYOND_EOF); }
  action refuse_pool_exhausted { emel_staged_refuse(m, EMEL_POOL_EXHAUSTED); }
  action refuse_consumer_failed { emel_staged_refuse(m, EMEL_STAGED_CONSUMER_FAILED); }
  action refuse_handoff_failed { emel_staged_refuse(m, EMEL_STAGED_HANDOFF_FAILED); }
  action refuse_read_failed { emel_staged_refuse(m, EMEL_READ_FAILED); }
  action refuse_unexpected_eof { emel_staged_refuse(m, EMEL_READ_UNEXPECTED_EOF); }
  action refuse_invalid_handle { emel_staged_refuse(m, EMEL_INVALID_HANDLE); }

  main := (
    start: idle: (
        PREPARE @check_request -> checking_request
      | STREAM @start_reader -> starting_reader
      | FILL @await_free_buffer -> awaiting_buffer
      | RELEASE @check_handle -> checking_handle
    ),
    checking_request: (
        REQUEST_VALID @check_consumer -> checking_consumer
      | REQUEST_INVALID @refuse_invalid_request -> idle
    ),
    checking_consumer: (
        CONSUMER_VALID @check_file_index -> checking_file_index
      | CONSUMER_MISSING @refuse_no_consumer -> idle
      | CONSUMER_INVALID @refuse_invalid_request -> idle
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
        SPAN_VALID @choose_io_mode -> choosing_io_mode
      | SPAN_OVERFLOWS @refuse_span_overflow -> idle
    ),
    choosing_io_mode: (
        BUFFERED_IO @open_buffered -> opening_buffered
      | DIRECT_IO @open_direct -> opening_direct
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
        SLOT_RESERVED -> prepared
      | POOL_EXHAUSTED @refuse_pool_exhausted -> idle
    ),
    # rests: the member holds its slot until the stream settles it
    prepared: (
        JOIN_STREAM -> idle
    ),
    # ---- the stream, on the calling thread ----
    starting_reader: (
        READER_STARTED @await_window -> awaiting_window
      | READER_INLINE @count_inline_stream @await_window -> awaiting_window
    ),
    awaiting_window: (
        WINDOW_READY @consume_window -> consuming
      | WINDOW_FAILED @take_window_error @stop_reader -> stopping
      | HANDOFF_FAILED @refuse_handoff_failed @stop_reader -> stopping
    ),
    consuming: (
        CONSUMED @free_window -> freeing
      | CONSUMER_FAILED @refuse_consumer_failed @stop_reader -> stopping
    ),
    freeing: (
        WINDOWS_LEFT @await_window -> awaiting_window
      | ALL_CONSUMED @stop_reader -> stopping
    ),
    stopping: (
        READER_STOPPED @settle_stream -> idle
      | READER_JOIN_FAILED @count_join_failure @settle_stream -> idle
    ),
    # ---- one window, on the reader ----
    awaiting_buffer: (
        BUFFER_FREE @read_chunk -> reading_chunk
      | STOP_REQUESTED -> idle
      | HANDOFF_FAILED @refuse_handoff_failed @publish_failure -> idle
    ),
    reading_chunk: (
        CHUNK_READ @advance_window -> advancing
      | CHUNK_SHORT @count_short_read @advance_window -> advancing
      | CHUNK_INTERRUPTED @check_retry_budget -> retrying
      | CHUNK_END_OF_FILE @recheck_file -> checking_file_at_end
      | CHUNK_FAILED @refuse_read_failed @publish_failure -> idle
    ),
    retrying: (
        RETRY_ALLOWED @read_chunk -> reading_chunk
      | RETRIES_EXHAUSTED @refuse_read_failed @publish_failure -> idle
    ),
    advancing: (
        CHUNK_DUE @read_chunk -> reading_chunk
      | WINDOW_COMPLETE @recheck_file -> checking_file_after_window
    ),
    # the file ended early: truncated under the load, or (unchanged) a device that lies
    checking_file_at_end: (
        FILE_UNCHANGED @refuse_unexpected_eof @publish_failure -> idle
      | FILE_CHANGED @refuse_file_changed @publish_failure -> idle
      | STAT_FAILED @refuse_stat_failed @publish_failure -> idle
    ),
    # the window is whole: are its bytes still the indexed file's? (before the consumer sees them)
    checking_file_after_window: (
        FILE_UNCHANGED @publish_window -> idle
      | FILE_CHANGED @refuse_file_changed @publish_failure -> idle
      | STAT_FAILED @refuse_stat_failed @publish_failure -> idle
    ),
    checking_handle: (
        HANDLE_LIVE @release_residency -> idle
      | HANDLE_STALE @refuse_invalid_handle -> idle
    )
  );
}%%

static void io_staged_exec(void *ctx, int event) {
  io_staged_ctx *m = ctx;
  const int *p = &event;
  const int *pe = p + 1;
EMEL_GENERATED_EXEC_BEGIN
  %% write exec;
EMEL_GENERATED_EXEC_END
}

const emel_machine_desc emel_io_staged_desc = EMEL_MACHINE_DESC(io_staged);
