/* fuzz_pth.c - PyTorch .pth checkpoints: the zip reader, the legacy
 * format's reader, the restricted unpickler and the state_dict extraction.
 *
 * An input that starts with "PK\3\4" (a zip) or with the pickle PROTO
 * opcode 0x80 (the legacy format: five pickles and the raw storages) is
 * parsed as it is, CRCs included. Any other input is a list of records, each
 *     u8 name length, name, u32 (little-endian) data length, data
 * (lengths clamped to what is left), which is packed into a stored zip with
 * correct CRCs first, so mutations reach data.pkl and the storages. */
#include "fuzz.h"
#include "io/pth.h"

#define MAX_RECORDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file f;
    if ((size >= 4 && memcmp(data, "PK\3\4", 4) == 0) || (size >= 1 && data[0] == 0x80)) {
        if (pth_parse(data, size, "fuzz.pth", &f) == RN_OK)
            st_free(&f);
        return 0;
    }
    fuzz_zip_entry e[MAX_RECORDS];
    size_t n = 0, at = 0;
    while (at < size && n < MAX_RECORDS) {
        size_t name_len = data[at++];
        if (name_len > size - at)
            name_len = size - at;
        e[n].name = data + at, e[n].name_len = name_len;
        at += name_len;
        size_t len = 0;
        for (int k = 0; k < 4 && at < size; k++)
            len |= (size_t)data[at++] << (8 * k);
        if (len > size - at)
            len = size - at;
        e[n].data = data + at, e[n].data_len = len;
        at += len;
        n++;
    }
    fuzz_buf zip = {0};
    fuzz_zip(e, n, &zip);
    if (pth_parse(zip.p, zip.len, "fuzz.pth", &f) == RN_OK)
        st_free(&f);
    free(zip.p);
    return 0;
}
