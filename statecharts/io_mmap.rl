/* The mmap strategy: map a tensor's bytes, advise a sub-range, release them.
 *
 * The machine rests in `ready`; every request runs to completion back there.
 * A map request is validated in full (shape, file index, path, span, platform,
 * pool) before any OS call is reachable. A model file is opened, sized and
 * mapped once, as a whole (see src/emel/io/mmap/mmap.h for why), on the first
 * tensor that needs it; later tensors of that file only check their span
 * against the size read then and take a reference. A failure after the
 * reference was taken drops it again, unmapping the file when it was the last.
 * Release unlocks what the request locked, then either unmaps the file (last
 * reference) or drops the pages only this tensor covered.
 * A batch with populate maps each tensor (MAP, its populate deferred), runs
 * every populate on lanes at once (POPULATE_BATCH), then finishes each
 * tensor (FINISH_POPULATE) through the populate routes a lone one takes.
 */
/* The tables of gen/io_mmap_machine.h are defined in this translation unit. */
#define EMEL_MACHINE_TABLES
#include "emel/io/mmap/mmap.h"

%%{
  machine io_mmap;
  alphtype int;
  access m->core.;

  # requests
  export MAP = 1;
  export ADVISE = 2;
  export RELEASE = 3;
  # outcomes reported by actions
  export REQUEST_VALID = 4;
  export REQUEST_INVALID = 5;
  export FILE_INDEX_VALID = 6;
  export FILE_INDEX_INVALID = 7;
  export PATH_VALID = 8;
  export PATH_INVALID = 9;
  export SPAN_VALID = 10;
  export SPAN_OVERFLOWS = 11;
  export MAPPING_SUPPORTED = 12;
  export MAPPING_UNSUPPORTED = 13;
  export SLOT_AVAILABLE = 14;
  export POOL_FULL = 15;
  export FILE_MAPPED = 16;
  export FILE_NOT_MAPPED = 17;
  export SPAN_INSIDE_FILE = 18;
  export SPAN_BEYOND_EOF = 19;
  export OPEN_OK = 20;
  export OPEN_FAILED = 21;
  export FILE_UNCHANGED = 22;
  export SIZE_FAILED = 23;
  export MAP_OK = 24;
  export MAP_FAILED = 25;
  export POPULATE_REQUESTED = 26;
  export POPULATE_NOT_REQUESTED = 27;
  export POPULATED = 28;
  export POPULATE_FAILED = 29;
  export LOCK_REQUESTED = 30;
  export LOCK_NOT_REQUESTED = 31;
  export LOCKED = 32;
  export LOCK_FAILED = 33;
  export REFERENCE_KEPT = 34;
  export LAST_REFERENCE_DROPPED = 35;
  export UNMAPPED = 36;
  export UNMAP_FAILED = 37;
  export HANDLE_VALID = 38;
  export HANDLE_INVALID = 39;
  export SLOT_LOCKED = 40;
  export SLOT_NOT_LOCKED = 41;
  export UNLOCKED = 42;
  export UNLOCK_FAILED = 43;
  export LAST_REFERENCE = 44;
  export PAGES_OF_ITS_OWN = 45;
  export NO_PAGES_OF_ITS_OWN = 46;
  export PAGES_DROPPED = 47;
  export DROP_FAILED = 48;
  export ADVICE_VALID = 49;
  export ADVICE_INVALID = 50;
  export RANGE_VALID = 51;
  export RANGE_INVALID = 52;
  export ADVISED = 53;
  export ADVISE_FAILED = 54;
  export FILE_CHANGED = 55;
  export NOT_A_REGULAR_FILE = 56;
  export POPULATE_FAULTED = 57;
  # a batch's populates on lanes
  export POPULATE_DEFERRED = 58;
  export POPULATE_BATCH = 59;
  export FINISH_POPULATE = 60;
  export LANES_STARTED = 61;
  export SOME_LANES_INLINE = 62;
  export LANES_JOINED = 63;
  export LANE_JOIN_FAILED = 64;

  # map: validation, no OS call
  action check_request { EMEL_REPORT(m, emel_mmap_check_request(m)); }
  action check_file_index { EMEL_REPORT(m, emel_mmap_check_file_index(m)); }
  action check_path { EMEL_REPORT(m, emel_mmap_check_path(m)); }
  action check_span { EMEL_REPORT(m, emel_mmap_check_span(m)); }
  action check_platform { EMEL_REPORT(m, emel_mmap_check_platform(m)); }
  action check_pool { EMEL_REPORT(m, emel_mmap_check_pool(m)); }
  action check_file_mapped { EMEL_REPORT(m, emel_mmap_check_file_mapped(m)); }
  action check_bounds { EMEL_REPORT(m, emel_mmap_check_bounds(m)); }
  # map: OS calls
  action open_file { EMEL_REPORT(m, emel_mmap_open_file(m)); }
  action identify_file { EMEL_REPORT(m, emel_mmap_identify_file(m)); }
  action map_file { EMEL_REPORT(m, emel_mmap_map_file(m)); }
  action adopt_mapping { emel_mmap_adopt_mapping(m); }
  action close_file { emel_mmap_close_file(m); }
  action close_after_failure { emel_mmap_close_file(m); }
  action take_file_reference { emel_mmap_take_file_reference(m); }
  action check_populate { EMEL_REPORT(m, emel_mmap_check_populate(m)); }
  action populate_pages { EMEL_REPORT(m, emel_mmap_populate_pages(m)); }
  action defer_populate { emel_mmap_defer_populate(m); }
  action start_populate_lanes { EMEL_REPORT(m, emel_mmap_start_populate_lanes(m)); }
  action count_inline_lanes { emel_mmap_count_inline_lanes(m); }
  action populate_own_ranges { emel_mmap_populate_own_ranges(m); }
  action join_populate_lanes { EMEL_REPORT(m, emel_mmap_join_populate_lanes(m)); }
  action count_join_failure { emel_mmap_count_join_failure(m); }
  action take_lane_populate { EMEL_REPORT(m, emel_mmap_take_lane_populate(m)); }
  action reopen_after_fault { EMEL_REPORT(m, emel_mmap_open_file(m)); }
  action check_file_shrank { EMEL_REPORT(m, emel_mmap_check_file_shrank(m)); }
  action close_after_fault { emel_mmap_close_file(m); }
  action check_lock { EMEL_REPORT(m, emel_mmap_check_lock(m)); }
  action lock_pages { EMEL_REPORT(m, emel_mmap_lock_pages(m)); }
  action grant_mapping { emel_mmap_grant_mapping(m); }
  # map: cleanup after a failure part-way
  action drop_file_reference { EMEL_REPORT(m, emel_mmap_drop_file_reference(m)); }
  action unmap_after_failure { EMEL_REPORT(m, emel_mmap_unmap_file(m)); }
  action forget_file_mapping { emel_mmap_forget_file_mapping(m); }
  # release
  action check_release_handle { EMEL_REPORT(m, emel_mmap_check_handle(m)); }
  action check_slot_locked { EMEL_REPORT(m, emel_mmap_check_slot_locked(m)); }
  action unlock_pages { EMEL_REPORT(m, emel_mmap_unlock_pages(m)); }
  action mark_unlocked { emel_mmap_mark_unlocked(m); }
  action check_references { EMEL_REPORT(m, emel_mmap_check_references(m)); }
  action unmap_file { EMEL_REPORT(m, emel_mmap_unmap_file(m)); }
  action drop_own_pages { EMEL_REPORT(m, emel_mmap_drop_own_pages(m)); }
  action free_slot { emel_mmap_free_slot(m); }
  # advise
  action check_advice { EMEL_REPORT(m, emel_mmap_check_advice(m)); }
  action check_advise_handle { EMEL_REPORT(m, emel_mmap_check_handle(m)); }
  action check_advise_range { EMEL_REPORT(m, emel_mmap_check_advise_range(m)); }
  action advise_pages { EMEL_REPORT(m, emel_mmap_advise_pages(m)); }
  action grant_advice { emel_mmap_succeed(m); }
  # refusals: one code each
  action refuse_invalid_request { emel_mmap_fail(m, EMEL_INVALID_REQUEST); }
  action refuse_invalid_file_index { emel_mmap_fail(m, EMEL_INVALID_FILE_INDEX); }
  action refuse_invalid_path { emel_mmap_fail(m, EMEL_INVALID_PATH); }
  action refuse_span_overflow { emel_mmap_fail(m, EMEL_SPAN_OVERFLOW); }
  action refuse_unsupported { emel_mmap_fail(m, EMEL_MMAP_UNSUPPORTED); }
  action refuse_pool_exhausted { emel_mmap_fail(m, EMEL_POOL_EXHAUSTED); }
  action refuse_beyond_eof { emel_mmap_fail(m, EMEL_SPAN_BEYOND_EOF); }
  action refuse_open_failed { emel_mmap_fail(m, EMEL_OPEN_FAILED); }
  action refuse_stat_failed { emel_mmap_fail(m, EMEL_STAT_FAILED); }
  action refuse_file_changed { emel_mmap_fail(m, EMEL_FILE_CHANGED); }
  action refuse_not_a_regular_file { emel_mmap_fail(m, EMEL_NOT_A_REGULAR_FILE); }
  action refuse_map_failed { emel_mmap_fail(m, EMEL_MMAP_FAILED); }
  action refuse_populate_failed { emel_mmap_fail(m, EMEL_MMAP_POPULATE_FAILED); }
  action refuse_populate_faulted { emel_mmap_fail_after_fault(m, EMEL_MMAP_POPULATE_FAILED); }
  action refuse_shrunk_after_fault { emel_mmap_fail_after_fault(m, EMEL_FILE_CHANGED); }
  action refuse_lock_failed { emel_mmap_fail(m, EMEL_MMAP_LOCK_FAILED); }
  action refuse_invalid_handle { emel_mmap_fail(m, EMEL_INVALID_HANDLE); }
  action refuse_unlock_failed { emel_mmap_fail(m, EMEL_MMAP_UNLOCK_FAILED); }
  action refuse_unmap_failed { emel_mmap_fail(m, EMEL_MMAP_UNMAP_FAILED); }
  action refuse_drop_failed { emel_mmap_fail(m, EMEL_MMAP_ADVISE_FAILED); }
  action refuse_advise_range { emel_mmap_fail(m, EMEL_MMAP_ADVISE_RANGE_INVALID); }
  action refuse_advise_failed { emel_mmap_fail(m, EMEL_MMAP_ADVISE_FAILED); }

  main := (
    start: ready: (
        MAP @check_request -> checking_request
      | RELEASE @check_release_handle -> checking_release_handle
      | ADVISE @check_advice -> checking_advice
      | POPULATE_BATCH @start_populate_lanes -> starting_populate_lanes
      | FINISH_POPULATE @take_lane_populate -> populating
    ),

    # ---- map: validation before any OS call ----
    checking_request: (
        REQUEST_VALID @check_file_index -> checking_file_index
      | REQUEST_INVALID @refuse_invalid_request -> ready
    ),
    checking_file_index: (
        FILE_INDEX_VALID @check_path -> checking_path
      | FILE_INDEX_INVALID @refuse_invalid_file_index -> ready
    ),
    checking_path: (
        PATH_VALID @check_span -> checking_span
      | PATH_INVALID @refuse_invalid_path -> ready
    ),
    checking_span: (
        SPAN_VALID @check_platform -> checking_platform
      | SPAN_OVERFLOWS @refuse_span_overflow -> ready
    ),
    checking_platform: (
        MAPPING_SUPPORTED @check_pool -> checking_pool
      | MAPPING_UNSUPPORTED @refuse_unsupported -> ready
    ),
    checking_pool: (
        SLOT_AVAILABLE @check_file_mapped -> checking_file
      | POOL_FULL @refuse_pool_exhausted -> ready
    ),
    checking_file: (
        FILE_MAPPED @check_bounds -> checking_shared_bounds
      | FILE_NOT_MAPPED @open_file -> opening
    ),
    # the file is mapped already: its size was read when it was opened
    checking_shared_bounds: (
        SPAN_INSIDE_FILE @take_file_reference @check_populate -> choosing_populate
      | SPAN_BEYOND_EOF @refuse_beyond_eof -> ready
    ),

    # ---- map: first tensor of a file opens, sizes and maps it ----
    opening: (
        OPEN_OK @identify_file -> identifying
      | OPEN_FAILED @refuse_open_failed -> ready
    ),
    # the size mapped is read here, from a regular file that is still the one indexed
    # (emel_io_file.expected): nothing is mapped past the end of a file
    # truncated or replaced since
    identifying: (
        FILE_UNCHANGED @check_bounds -> checking_bounds
      | FILE_CHANGED @refuse_file_changed @close_after_failure -> ready
      | SIZE_FAILED @refuse_stat_failed @close_after_failure -> ready
      | NOT_A_REGULAR_FILE @refuse_not_a_regular_file @close_after_failure -> ready
    ),
    # checked before mapping, so no access can fault past the end of a short file
    checking_bounds: (
        SPAN_INSIDE_FILE @map_file -> mapping
      | SPAN_BEYOND_EOF @refuse_beyond_eof @close_after_failure -> ready
    ),
    # the descriptor is not needed once the file is mapped
    mapping: (
        MAP_OK @adopt_mapping @close_file @take_file_reference @check_populate -> choosing_populate
      | MAP_FAILED @refuse_map_failed @close_after_failure -> ready
    ),

    # ---- map: options ----
    # in a batch the populate is left to the lanes (POPULATE_BATCH): the tensor
    # keeps its file reference and a reserved slot until its FINISH_POPULATE
    choosing_populate: (
        POPULATE_REQUESTED @populate_pages -> populating
      | POPULATE_DEFERRED @defer_populate -> ready
      | POPULATE_NOT_REQUESTED @check_lock -> choosing_lock
    ),
    # FINISH_POPULATE enters here with its lane's outcome: the routes of a
    # populate on the calling thread
    populating: (
        POPULATED @check_lock -> choosing_lock
      | POPULATE_FAILED @refuse_populate_failed @drop_file_reference -> dropping_after_failure
      | POPULATE_FAULTED @reopen_after_fault -> reopening_after_fault
    ),
    # a page of the span could not be read (an access would have raised
    # SIGBUS): FILE_CHANGED when the file is now shorter than what was mapped
    # (or no longer the file indexed), else the populate failure; both keep
    # the fault's errno
    reopening_after_fault: (
        OPEN_OK @check_file_shrank -> checking_file_shrank
      | OPEN_FAILED @refuse_populate_faulted @drop_file_reference -> dropping_after_failure
    ),
    checking_file_shrank: (
        FILE_CHANGED @refuse_shrunk_after_fault @close_after_fault @drop_file_reference -> dropping_after_failure
      | FILE_UNCHANGED @refuse_populate_faulted @close_after_fault @drop_file_reference -> dropping_after_failure
      | SIZE_FAILED @refuse_populate_faulted @close_after_fault @drop_file_reference -> dropping_after_failure
    ),
    choosing_lock: (
        LOCK_REQUESTED @lock_pages -> locking
      | LOCK_NOT_REQUESTED @grant_mapping -> ready
    ),
    locking: (
        LOCKED @grant_mapping -> ready
      | LOCK_FAILED @refuse_lock_failed @drop_file_reference -> dropping_after_failure
    ),

    # ---- a batch's populates: lanes 1.. on threads, lane 0 (and any lane
    # whose thread did not start) here; every lane is joined before the
    # tensors are finished one by one (FINISH_POPULATE) ----
    starting_populate_lanes: (
        LANES_STARTED @populate_own_ranges @join_populate_lanes -> joining_populate_lanes
      | SOME_LANES_INLINE @count_inline_lanes @populate_own_ranges @join_populate_lanes -> joining_populate_lanes
    ),
    joining_populate_lanes: (
        LANES_JOINED -> ready
      | LANE_JOIN_FAILED @count_join_failure -> ready
    ),

    # ---- map: undo the reference this request took ----
    dropping_after_failure: (
        REFERENCE_KEPT -> ready
      | LAST_REFERENCE_DROPPED @unmap_after_failure -> unmapping_after_failure
    ),
    # an unmap that fails here leaves the file mapped, unreferenced: the next
    # tensor of that file reuses it, and destroy unmaps it
    unmapping_after_failure: (
        UNMAPPED @forget_file_mapping -> ready
      | UNMAP_FAILED -> ready
    ),

    # ---- release ----
    checking_release_handle: (
        HANDLE_VALID @check_slot_locked -> choosing_unlock
      | HANDLE_INVALID @refuse_invalid_handle -> ready
    ),
    choosing_unlock: (
        SLOT_LOCKED @unlock_pages -> unlocking
      | SLOT_NOT_LOCKED @check_references -> checking_references
    ),
    unlocking: (
        UNLOCKED @mark_unlocked @check_references -> checking_references
      | UNLOCK_FAILED @refuse_unlock_failed -> ready
    ),
    checking_references: (
        LAST_REFERENCE @unmap_file -> unmapping
      | PAGES_OF_ITS_OWN @drop_own_pages -> dropping_pages
      | NO_PAGES_OF_ITS_OWN @free_slot -> ready
    ),
    # a refused release keeps the slot live: the caller may release it again
    unmapping: (
        UNMAPPED @forget_file_mapping @free_slot -> ready
      | UNMAP_FAILED @refuse_unmap_failed -> ready
    ),
    dropping_pages: (
        PAGES_DROPPED @free_slot -> ready
      | DROP_FAILED @refuse_drop_failed -> ready
    ),

    # ---- advise ----
    checking_advice: (
        ADVICE_VALID @check_advise_handle -> checking_advise_handle
      | ADVICE_INVALID @refuse_invalid_request -> ready
    ),
    checking_advise_handle: (
        HANDLE_VALID @check_advise_range -> checking_advise_range
      | HANDLE_INVALID @refuse_invalid_handle -> ready
    ),
    checking_advise_range: (
        RANGE_VALID @advise_pages -> advising
      | RANGE_INVALID @refuse_advise_range -> ready
    ),
    advising: (
        ADVISED @grant_advice -> ready
      | ADVISE_FAILED @refuse_advise_failed -> ready
    )
  );
}%%

static void io_mmap_exec(void *ctx, int event) {
  io_mmap_ctx *m = ctx;
  const int *p = &event;
  const int *pe = p + 1;
EMEL_GENERATED_EXEC_BEGIN
  %% write exec;
EMEL_GENERATED_EXEC_END
}

const emel_machine_desc emel_io_mmap_desc = EMEL_MACHINE_DESC(io_mmap);
