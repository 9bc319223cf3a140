#include "emel/status.h"

const char *emel_status_name(emel_status code) {
  switch (code) {
#define EMEL_STATUS_NAME_(name, number, message) \
  case EMEL_##name: return #name;
    EMEL_STATUS_LIST(EMEL_STATUS_NAME_)
#undef EMEL_STATUS_NAME_
  }
  return "UNKNOWN_STATUS";
}

const char *emel_status_message(emel_status code) {
  switch (code) {
#define EMEL_STATUS_MESSAGE_(name, number, message) \
  case EMEL_##name: return message;
    EMEL_STATUS_LIST(EMEL_STATUS_MESSAGE_)
#undef EMEL_STATUS_MESSAGE_
  }
  return "unknown status code";
}
