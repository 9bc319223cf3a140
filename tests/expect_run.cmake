# Runs COMMAND (a ;-list) and checks its exit status, stdout and stderr.
# Usage: cmake -DCOMMAND=... -DEXPECT_RC=N -DEXPECT_STDOUT=regex -DEXPECT_STDERR=regex -P expect_run.cmake
execute_process(COMMAND ${COMMAND} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT "${rc}" STREQUAL "${EXPECT_RC}" OR NOT out MATCHES "${EXPECT_STDOUT}" OR NOT err MATCHES "${EXPECT_STDERR}")
  message(FATAL_ERROR "${COMMAND}: exit ${rc} (expected ${EXPECT_RC})\nstdout: [${out}] (expected /${EXPECT_STDOUT}/)\n"
    "stderr: [${err}] (expected /${EXPECT_STDERR}/)")
endif()
