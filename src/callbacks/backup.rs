//! placeholder
/// x
pub struct BackupAndRestore;
/// x
pub enum SaveFreq { /// x
Epoch }
