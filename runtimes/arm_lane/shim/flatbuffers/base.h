// burn-edge ARM lane stand-in: LCE's bitpacking reads only this macro from flatbuffers/base.h.
#pragma once
#ifndef FLATBUFFERS_LITTLEENDIAN
#define FLATBUFFERS_LITTLEENDIAN (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
#endif
