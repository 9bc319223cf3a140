# Installs emel-io into a scratch prefix, then builds and runs a consumer
# three ways: find_package (static and shared), pkg-config, add_subdirectory.
# Each reports the project's VERSION from emel_version() and <emel/version.h>.
# Usage: cmake -DSOURCE_DIR=... -DWORK_DIR=... -DC_COMPILER=... -DVERSION=... -P run.cmake
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
# Configured for one prefix (never created), installed to another with
# `cmake --install --prefix`: guards against an emel-io.pc that names the
# configured prefix (it once said /usr/local whatever --prefix was given).
set(configured_prefix ${WORK_DIR}/configured-prefix-never-created)

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
    -DCMAKE_INSTALL_PREFIX=${configured_prefix})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/lib -j2)
run(${CMAKE_COMMAND} --install ${WORK_DIR}/lib --prefix ${prefix})

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

# pkg-config: the plain compiler line an autotools or Makefile user would write,
# against the prefix as installed, then against the same prefix moved (the .pc
# names its prefix relative to itself, so it follows).
find_program(PKG_CONFIG pkg-config REQUIRED)
function(expect_pkgconfig_consumer prefix name)
  file(GLOB pcdir ${prefix}/lib*/pkgconfig ${prefix}/lib/*/pkgconfig)
  set(ENV{PKG_CONFIG_PATH} "${pcdir}")
  run(${PKG_CONFIG} --modversion emel-io)
  string(STRIP "${last_output}" pc_version)
  if(NOT pc_version STREQUAL VERSION)
    message(FATAL_ERROR "pkg-config --modversion emel-io for the prefix ${prefix}: ${pc_version}, want ${VERSION}")
  endif()
  message(STATUS "ok: pkg-config --modversion emel-io: ${pc_version}")
  run(${PKG_CONFIG} --cflags --libs emel-io)
  string(STRIP "${last_output}" flags)
  if(flags MATCHES "configured-prefix" OR NOT flags MATCHES "-I${prefix}/")
    message(FATAL_ERROR "pkg-config --cflags --libs emel-io for the prefix ${prefix} printed: ${flags}")
  endif()
  separate_arguments(flags UNIX_COMMAND "${flags}")
  run(${C_COMPILER} -std=c11 ${SOURCE_DIR}/tests/consumer/main.c ${flags} -o ${WORK_DIR}/${name})
  get_filename_component(libdir "${pcdir}" DIRECTORY)
  expect_consumer_output(${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${libdir} ${WORK_DIR}/${name})
  # Static: libemel-io.a with what `pkg-config --static` adds (Libs.private: -luring
  # when built with liburing). Guards against a .pc a static link fails with.
  run(${PKG_CONFIG} --static --cflags --libs emel-io)
  string(STRIP "${last_output}" flags)
  separate_arguments(flags UNIX_COMMAND "${flags}")
  list(REMOVE_ITEM flags -lemel-io)
  run(${C_COMPILER} -std=c11 ${SOURCE_DIR}/tests/consumer/main.c ${libdir}/libemel-io.a ${flags}
      -o ${WORK_DIR}/${name}_static)
  expect_consumer_output(${WORK_DIR}/${name}_static)
endfunction()
expect_pkgconfig_consumer(${prefix} consumer_pkgconfig)
file(RENAME ${prefix} ${WORK_DIR}/moved)
expect_pkgconfig_consumer(${WORK_DIR}/moved consumer_pkgconfig_moved)

# add_subdirectory with EMEL_IO_INSTALL=OFF: the consumer's own install (it has
# no rules) installs nothing of emel-io. Guards against the option being ignored.
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer/embedded -B ${WORK_DIR}/embedded ${cc}
    -DEMEL_IO_SOURCE_DIR=${SOURCE_DIR} -DEMEL_IO_INSTALL=OFF)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/embedded -j2)
expect_consumer_output(${WORK_DIR}/embedded/consumer)
run(${CMAKE_COMMAND} --install ${WORK_DIR}/embedded --prefix ${WORK_DIR}/embedded-prefix)
file(GLOB_RECURSE installed LIST_DIRECTORIES false ${WORK_DIR}/embedded-prefix/*)
if(installed)
  message(FATAL_ERROR "EMEL_IO_INSTALL=OFF, yet installing the embedding project installed: ${installed}")
endif()
message(STATUS "ok: EMEL_IO_INSTALL=OFF installs nothing")
