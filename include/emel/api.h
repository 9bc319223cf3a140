/* EMEL_API marks the public API. The library is compiled with hidden
 * visibility, so libemel-io.so exports exactly the functions declared with
 * EMEL_API and nothing else (tests/abi_check.py checks both directions).
 * Define EMEL_API before including any emel header to override it. */
#ifndef EMEL_API_H
#define EMEL_API_H

#ifndef EMEL_API
#if defined(__GNUC__) || defined(__clang__)
#define EMEL_API __attribute__((visibility("default")))
#else
#define EMEL_API
#endif
#endif

#endif
