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

/* Structs that callers fill in begin with `size_t struct_size`, the struct's
 * sizeof in the header the caller was compiled with: a newer library reads
 * only that many bytes (later members take their defaults), and refuses a size
 * it does not know (0, or larger than its own) with EMEL_STRUCT_SIZE_UNKNOWN.
 * Each such struct has an initializer macro that sets it, taking designated
 * members: `emel_load_options o = EMEL_LOAD_OPTIONS_INIT(.strategy = ...);`.
 * Members are only ever appended, each starting at or after the previous
 * release's sizeof (explicit padding where needed), so an older caller's
 * trailing padding is never read as a member. */
#define EMEL_STRUCT_INIT_(type, ...) {.struct_size = sizeof(type), __VA_ARGS__}

#endif
