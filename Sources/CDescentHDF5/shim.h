#ifndef CDESCENT_HDF5_SHIM_H
#define CDESCENT_HDF5_SHIM_H
// libhdf5 (Debian: libhdf5-dev, pkg-config `hdf5`), used for Keras' `.h5` and `.weights.h5` files.
#include <hdf5.h>

// The identifiers below are macros that expand to `(H5open(), H5T_NATIVE_FLOAT_g)` and the like, or to
// casts, which Swift cannot import; these functions return their values.
static inline hid_t descent_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t descent_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t descent_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t descent_h5t_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t descent_h5t_ieee_f64le(void) { return H5T_IEEE_F64LE; }
static inline hid_t descent_h5t_std_i64le(void) { return H5T_STD_I64LE; }
static inline hid_t descent_h5t_c_s1(void) { return H5T_C_S1; }
static inline hid_t descent_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t descent_h5p_file_create(void) { return H5P_FILE_CREATE; }
static inline hid_t descent_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t descent_h5p_group_create(void) { return H5P_GROUP_CREATE; }
static inline hid_t descent_h5p_link_create(void) { return H5P_LINK_CREATE; }
static inline hid_t descent_h5e_default(void) { return H5E_DEFAULT; }
static inline hid_t descent_h5s_all(void) { return H5S_ALL; }
static inline unsigned descent_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned descent_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline size_t descent_h5t_variable(void) { return H5T_VARIABLE; }
#include "metadata.h"
#endif
