# Installs this build with `cmake --install --prefix`, moves the prefix, deletes
# nothing else (the build tree stays), and runs the moved emel-load with no FILE:
# it must load the sample installed beside it. Guards against a sample looked up
# in the build tree or the configured prefix (it once was, so an install made
# with --prefix, or moved, silently loaded the build tree's sample, or none).
# Usage: cmake -DBUILD_DIR=... -DWORK_DIR=... -P install_relocated.cmake
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix
  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed (${rc}): ${err}")
endif()
file(RENAME ${WORK_DIR}/prefix ${WORK_DIR}/moved)
set(sample ${WORK_DIR}/moved/share/emel-io/sample.gguf)
if(NOT EXISTS ${sample})
  message(FATAL_ERROR "the install has no ${sample}")
endif()
execute_process(COMMAND ${WORK_DIR}/moved/bin/emel-load --json --quiet
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "moved emel-load with no FILE exited ${rc}: ${err}")
endif()
string(JSON file GET "${out}" file)
string(JSON count GET "${out}" tensor_count)
if(NOT file STREQUAL sample OR NOT count EQUAL 96)
  message(FATAL_ERROR "moved emel-load loaded ${file} (${count} tensors), not ${sample} (96)")
endif()
message(STATUS "ok: the moved emel-load loaded ${file}")
