"""SyncTalkFace (Park et al., AAAI 2022), re-implemented from the authors' training code and trained here."""
