# Installs emel-io into a scratch prefix, then builds and runs a consumer
# three ways: find_package (static and shared), pkg-config, add_subdirectory.
# Each reports the project's VERSION from emel_version() and <emel/version.h>.
# Usage: cmake -DSOURCE_DIR=... -DWORK_DIR=... -DC_COMPILER=... -DVERSION=... -P run.cmake
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

function(expect_consumer_output)
  run(${ARGN})
  if(NOT last_output MATCHES "consumer: resident, the span ends past the end of the file"
     OR NOT last_output MATCHES "consumer: version ${VERSION}, header ${VERSION}\n")
    message(FATAL_ERROR "${ARGN} printed: ${last_output}")
  endif()
  message(STATUS "ok: ${ARGN}")
endfunction()

set(cc -DCMAKE_C_COMPILER=${C_COMPILER})
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/lib ${cc} -DEMEL_IO_TESTS=OFF -DEMEL_IO_TOOLS=OFF
    -DCMAKE_INSTALL_PREFIX=${prefix})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/lib -j2)
run(${CMAKE_COMMAND} --install ${WORK_DIR}/lib)

# The installed shared library (the real file, the SONAME link a loader looks
# for, the development link) and the generated version header.
string(REGEX MATCH "^[0-9]+" major "${VERSION}")
foreach(f libemel-io.so.${VERSION} libemel-io.so.${major} libemel-io.so)
  file(GLOB found ${prefix}/lib*/${f} ${prefix}/lib/*/${f})
  if(NOT found)
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()
if(NOT EXISTS ${prefix}/include/emel/version.h OR EXISTS ${prefix}/include/emel/version.h.in)
  message(FATAL_ERROR "include/emel/version.h not installed, or its template was")
endif()

run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer/installed -B ${WORK_DIR}/installed ${cc}
    -DCMAKE_PREFIX_PATH=${prefix})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/installed)
expect_consumer_output(${WORK_DIR}/installed/consumer_static)
expect_consumer_output(${WORK_DIR}/installed/consumer_shared)

# pkg-config: the plain compiler line an autotools or Makefile user would write.
find_program(PKG_CONFIG pkg-config REQUIRED)
file(GLOB pcdir ${prefix}/lib*/pkgconfig ${prefix}/lib/*/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "${pcdir}")
run(${PKG_CONFIG} --modversion emel-io)
string(STRIP "${last_output}" pc_version)
if(NOT pc_version STREQUAL VERSION)
  message(FATAL_ERROR "pkg-config --modversion emel-io: ${pc_version}, want ${VERSION}")
endif()
message(STATUS "ok: pkg-config --modversion emel-io: ${pc_version}")
run(${PKG_CONFIG} --cflags --libs emel-io)
string(STRIP "${last_output}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
run(${C_COMPILER} -std=c11 ${SOURCE_DIR}/tests/consumer/main.c ${flags} -o ${WORK_DIR}/consumer_pkgconfig)
get_filename_component(libdir "${pcdir}" DIRECTORY)
expect_consumer_output(${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${libdir} ${WORK_DIR}/consumer_pkgconfig)

run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer/embedded -B ${WORK_DIR}/embedded ${cc}
    -DEMEL_IO_SOURCE_DIR=${SOURCE_DIR})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/embedded -j2)
expect_consumer_output(${WORK_DIR}/embedded/consumer)
