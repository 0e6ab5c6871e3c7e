//! The one place where errors become errno values.

use fuser::Errno;

use crate::tree::TreeError;

pub fn errno(err: &TreeError) -> Errno {
    let code = match err {
        TreeError::NotFound => libc::ENOENT,
        TreeError::Exists => libc::EEXIST,
        TreeError::NotDir => libc::ENOTDIR,
        TreeError::IsDir => libc::EISDIR,
        TreeError::NotEmpty => libc::ENOTEMPTY,
        TreeError::StatusFileReadOnly => libc::EACCES,
        TreeError::OnlyAppDirectoriesHere | TreeError::TopLevelIsFixed => libc::EPERM,
        TreeError::CrossAppRename | TreeError::CrossAppLink => libc::EXDEV,
        TreeError::HardLinkToDirectory | TreeError::UnsupportedFileType => libc::EPERM,
        TreeError::UnknownCtlCommand | TreeError::InvalidArgument => libc::EINVAL,
        TreeError::BadDigestPrefix | TreeError::AmbiguousDigest { .. } => libc::EINVAL,
        TreeError::NoKeptTree(_) => libc::ENOENT,
        TreeError::AppBusy => libc::EBUSY,
        TreeError::KeptTreeDamaged(_) => libc::EIO,
        TreeError::BadHandle => libc::EBADF,
        TreeError::NameTooLong => libc::ENAMETOOLONG,
        TreeError::NoXattr => libc::ENODATA,
        TreeError::Io(io) => io.raw_os_error().unwrap_or(libc::EIO),
        TreeError::Meta(meta) => meta.errno(),
    };
    Errno::from_i32(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_keep_their_code() {
        let err = TreeError::Io(std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(errno(&err), Errno::from_i32(libc::ENOSPC));
        assert_eq!(errno(&TreeError::StatusFileReadOnly), Errno::EACCES);
        assert_eq!(errno(&TreeError::CrossAppLink), Errno::EXDEV);
    }
}
