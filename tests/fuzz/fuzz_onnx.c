/* fuzz_onnx.c - the ONNX import (protobuf reader, ModelProto / GraphProto / TensorProto fields,
 * initializers' values, the graph matched to a ResNet architecture) on arbitrary bytes. The
 * seeds (tools/make_fuzz_seeds.py): narrow ResNets written by PyTorch's torch.onnx.export,
 * BatchNorm folded (Identity nodes, torch's initializer names) and kept. */
#include "fuzz.h"
#include "model/onnx_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file f;
    if (rn_onnx_import(data, size, "fuzz.onnx", NULL, &f) != RN_OK)
        return 0;
    /* what the weights loader does with the state_dict: look tensors up, read their values */
    for (size_t i = 0; i < f.count; i++) {
        const st_tensor *t = st_find(&f, f.tensors[i].name);
        if (t == NULL)
            abort();
        volatile float sum = 0.0f;
        for (size_t j = 0; t->f32 && j < t->numel; j++)
            sum += t->f32[j];
        (void)sum;
    }
    if (st_meta_get(&f, "arch") == NULL)
        abort();
    st_free(&f);
    return 0;
}
