"""The human evaluation of the CALS paper's Table 2 as a command: pick videos from finished runs, serve a
rating page (mean opinion scores on visual quality, lip sync and realness), report MOS ± 95% CI."""

from talkbench.study.agreement import krippendorff_alpha
from talkbench.study.create import StudyConfig, create_study
from talkbench.study.definition import CRITERIA, Study, load_study
from talkbench.study.design import participant_order, williams_square
from talkbench.study.report import build_study_report, mos

__all__ = ["CRITERIA", "Study", "StudyConfig", "build_study_report", "create_study", "krippendorff_alpha",
           "load_study", "mos", "participant_order", "williams_square"]
