"""Command lines the reference DeepLab documents, copied as its users run them, with
only `python deeplab/train.py` (eval.py, vis.py, export_model.py) replaced by our
module. Sources (tensorflow/models, research/deeplab): local_test.sh and
local_test_mobilenetv2.sh (PASCAL VOC), g3doc/cityscapes.md, g3doc/pascal.md,
g3doc/ade20k.md; the DPC lines use the flags its model zoo gives for the released
xception71_dpc_cityscapes checkpoints. ${...} paths are left as written: a dry run
needs none of them to exist.
"""
import shlex

MODULES = {"train.py": "deeplab_dpc.train", "eval.py": "deeplab_dpc.eval",
           "vis.py": "deeplab_dpc.vis", "export_model.py": "deeplab_dpc.export"}

# name: (command line, the network the reference builds from it)
COMMANDS = {
    "local_test_train": (r"""
python "${WORK_DIR}"/train.py \
  --logtostderr \
  --train_split="trainval" \
  --model_variant="xception_65" \
  --atrous_rates=6 \
  --atrous_rates=12 \
  --atrous_rates=18 \
  --output_stride=16 \
  --decoder_output_stride=4 \
  --train_crop_size="513,513" \
  --train_batch_size=4 \
  --training_number_of_steps="${NUM_ITERATIONS}" \
  --fine_tune_batch_norm=true \
  --tf_initial_checkpoint="${INIT_FOLDER}/${CKPT_NAME}/model.ckpt" \
  --train_logdir="${TRAIN_LOGDIR}" \
  --dataset_dir="${PASCAL_DATASET}"
""", dict(backbone="xception_65", head="aspp", atrous_rates=[6, 12, 18], output_stride=16,
          decoder_output_stride=4, num_classes=21)),
    "local_test_eval": (r"""
python "${WORK_DIR}"/eval.py \
  --logtostderr \
  --eval_split="val" \
  --model_variant="xception_65" \
  --atrous_rates=6 \
  --atrous_rates=12 \
  --atrous_rates=18 \
  --output_stride=16 \
  --decoder_output_stride=4 \
  --eval_crop_size="513,513" \
  --checkpoint_dir="${TRAIN_LOGDIR}" \
  --eval_logdir="${EVAL_LOGDIR}" \
  --dataset_dir="${PASCAL_DATASET}" \
  --max_number_of_evaluations=1
""", dict(backbone="xception_65", head="aspp", atrous_rates=[6, 12, 18], output_stride=16,
          decoder_output_stride=4, num_classes=21)),
    "local_test_vis": (r"""
python "${WORK_DIR}"/vis.py \
  --logtostderr \
  --vis_split="val" \
  --model_variant="xception_65" \
  --atrous_rates=6 \
  --atrous_rates=12 \
  --atrous_rates=18 \
  --output_stride=16 \
  --decoder_output_stride=4 \
  --vis_crop_size="513,513" \
  --checkpoint_dir="${TRAIN_LOGDIR}" \
  --vis_logdir="${VIS_LOGDIR}" \
  --dataset_dir="${PASCAL_DATASET}" \
  --max_number_of_iterations=1
""", dict(backbone="xception_65", head="aspp", atrous_rates=[6, 12, 18], output_stride=16,
          decoder_output_stride=4, num_classes=21)),
    "local_test_export": (r"""
python "${WORK_DIR}"/export_model.py \
  --logtostderr \
  --checkpoint_path="${CKPT_PATH}" \
  --export_path="${EXPORT_PATH}" \
  --model_variant="xception_65" \
  --atrous_rates=6 \
  --atrous_rates=12 \
  --atrous_rates=18 \
  --output_stride=16 \
  --decoder_output_stride=4 \
  --num_classes=21 \
  --crop_size=513 \
  --crop_size=513 \
  --inference_scales=1.0
""", dict(backbone="xception_65", head="aspp", atrous_rates=[6, 12, 18], output_stride=16,
          decoder_output_stride=4, num_classes=21)),
    "local_test_mobilenetv2_train": (r"""
python "${WORK_DIR}"/train.py \
  --logtostderr \
  --train_split="trainval" \
  --model_variant="mobilenet_v2" \
  --output_stride=16 \
  --train_crop_size="513,513" \
  --train_batch_size=4 \
  --training_number_of_steps="${NUM_ITERATIONS}" \
  --fine_tune_batch_norm=true \
  --tf_initial_checkpoint="${INIT_FOLDER}/${CKPT_NAME}/model.ckpt-30000" \
  --train_logdir="${TRAIN_LOGDIR}" \
  --dataset_dir="${PASCAL_DATASET}"
""", dict(backbone="mobilenet_v2", head="aspp", atrous_rates=[], output_stride=16,
          decoder_output_stride=None, num_classes=21)),
    "local_test_mobilenetv2_eval": (r"""
python "${WORK_DIR}"/eval.py \
  --logtostderr \
  --eval_split="val" \
  --model_variant="mobilenet_v2" \
  --eval_crop_size="513,513" \
  --checkpoint_dir="${TRAIN_LOGDIR}" \
  --eval_logdir="${EVAL_LOGDIR}" \
  --dataset_dir="${PASCAL_DATASET}" \
  --max_number_of_evaluations=1
""", dict(backbone="mobilenet_v2", head="aspp", atrous_rates=[], output_stride=16,
          decoder_output_stride=None, num_classes=21)),
    "local_test_mobilenetv2_vis": (r"""
python "${WORK_DIR}"/vis.py \
  --logtostderr \
  --vis_split="val" \
  --model_variant="mobilenet_v2" \
  --vis_crop_size="513,513" \
  --checkpoint_dir="${TRAIN_LOGDIR}" \
  --vis_logdir="${VIS_LOGDIR}" \
  --dataset_dir="${PASCAL_DATASET}" \
  --max_number_of_iterations=1
""", dict(backbone="mobilenet_v2", head="aspp", atrous_rates=[], output_stride=16,
          decoder_output_stride=None, num_classes=21)),
    "local_test_mobilenetv2_export": (r"""
python "${WORK_DIR}"/export_model.py \
  --logtostderr \
  --checkpoint_path="${CKPT_PATH}" \
  --export_path="${EXPORT_PATH}" \
  --model_variant="mobilenet_v2" \
  --num_classes=21 \
  --crop_size=513 \
  --crop_size=513 \
  --inference_scales=1.0
""", dict(backbone="mobilenet_v2", head="aspp", atrous_rates=[], output_stride=16,
          decoder_output_stride=None, num_classes=21)),
    "cityscapes_train": (r"""
python deeplab/train.py \
    --logtostderr \
    --training_number_of_steps=90000 \
    --train_split="train_fine" \
    --model_variant="xception_65" \
    --atrous_rates=6 \
    --atrous_rates=12 \
    --atrous_rates=18 \
    --output_stride=16 \
    --decoder_output_stride=4 \
    --train_crop_size="769,769" \
    --train_batch_size=1 \
    --dataset="cityscapes" \
    --tf_initial_checkpoint=${PATH_TO_INITIAL_CHECKPOINT} \
    --train_logdir=${PATH_TO_TRAIN_DIR} \
    --dataset_dir=${PATH_TO_DATASET}
""", dict(backbone="xception_65", head="aspp", atrous_rates=[6, 12, 18], output_stride=16,
          decoder_output_stride=4, num_classes=19)),
    "cityscapes_eval": (r"""
python deeplab/eval.py \
    --logtostderr \
    --eval_split="val_fine" \
    --model_variant="xception_65" \
    --atrous_rates=6 \
    --atrous_rates=12 \
    --atrous_rates=18 \
    --output_stride=16 \
    --decoder_output_stride=4 \
    --eval_crop_size="1025,2049" \
    --dataset="cityscapes" \
    --checkpoint_dir=${PATH_TO_CHECKPOINT} \
    --eval_logdir=${PATH_TO_EVAL_DIR} \
    --dataset_dir=${PATH_TO_DATASET}
""", dict(backbone="xception_65", head="aspp", atrous_rates=[6, 12, 18], output_stride=16,
          decoder_output_stride=4, num_classes=19)),
    "cityscapes_vis": (r"""
python deeplab/vis.py \
    --logtostderr \
    --vis_split="val_fine" \
    --model_variant="xception_65" \
    --atrous_rates=6 \
    --atrous_rates=12 \
    --atrous_rates=18 \
    --output_stride=16 \
    --decoder_output_stride=4 \
    --vis_crop_size="1025,2049" \
    --dataset="cityscapes" \
    --colormap_type="cityscapes" \
    --checkpoint_dir=${PATH_TO_CHECKPOINT} \
    --vis_logdir=${PATH_TO_VIS_DIR} \
    --dataset_dir=${PATH_TO_DATASET}
""", dict(backbone="xception_65", head="aspp", atrous_rates=[6, 12, 18], output_stride=16,
          decoder_output_stride=4, num_classes=19)),
    "pascal_train": (r"""
python deeplab/train.py \
    --logtostderr \
    --training_number_of_steps=30000 \
    --train_split="train" \
    --model_variant="xception_65" \
    --atrous_rates=6 \
    --atrous_rates=12 \
    --atrous_rates=18 \
    --output_stride=16 \
    --decoder_output_stride=4 \
    --train_crop_size="513,513" \
    --train_batch_size=1 \
    --dataset="pascal_voc_seg" \
    --tf_initial_checkpoint=${PATH_TO_INITIAL_CHECKPOINT} \
    --train_logdir=${PATH_TO_TRAIN_DIR} \
    --dataset_dir=${PATH_TO_DATASET}
""", dict(backbone="xception_65", head="aspp", atrous_rates=[6, 12, 18], output_stride=16,
          decoder_output_stride=4, num_classes=21)),
    "ade20k_train": (r"""
python deeplab/train.py \
    --logtostderr \
    --training_number_of_steps=150000 \
    --train_split="train" \
    --model_variant="xception_65" \
    --atrous_rates=6 \
    --atrous_rates=12 \
    --atrous_rates=18 \
    --output_stride=16 \
    --decoder_output_stride=4 \
    --train_crop_size="513,513" \
    --train_batch_size=4 \
    --min_resize_value=513 \
    --max_resize_value=513 \
    --resize_factor=16 \
    --dataset="ade20k" \
    --tf_initial_checkpoint=${PATH_TO_INITIAL_CHECKPOINT} \
    --train_logdir=${PATH_TO_TRAIN_DIR}\
    --dataset_dir=${PATH_TO_DATASET}
""", dict(backbone="xception_65", head="aspp", atrous_rates=[6, 12, 18], output_stride=16,
          decoder_output_stride=4, num_classes=151)),
    "dpc_cityscapes_eval": (r"""
python deeplab/eval.py \
    --logtostderr \
    --eval_split="val_fine" \
    --model_variant="xception_71" \
    --dense_prediction_cell_json="deeplab/core/dense_prediction_cell_branch5_top1_cityscapes.json" \
    --output_stride=16 \
    --decoder_output_stride=4 \
    --eval_crop_size="1025,2049" \
    --dataset="cityscapes" \
    --checkpoint_dir=${PATH_TO_CHECKPOINT} \
    --eval_logdir=${PATH_TO_EVAL_DIR} \
    --dataset_dir=${PATH_TO_DATASET}
""", dict(backbone="xception_71", head="dpc", atrous_rates=[], output_stride=16,
          decoder_output_stride=4, num_classes=19)),
}
# The variable listings of original TF1 graphs (../shared/reference/tf1_variables/) that
# these networks must match name for name.
LISTINGS = {"local_test_mobilenetv2_train": "mobilenet_v2_aspp_21classes.json",
            "local_test_mobilenetv2_eval": "mobilenet_v2_aspp_21classes.json",
            "local_test_mobilenetv2_export": "mobilenet_v2_aspp_21classes.json",
            "dpc_cityscapes_eval": "xception_71_dpc_decoder4_19classes.json"}


def argv(name, substitutions):
    """(module, arguments) of command `name`, ${VAR}s replaced from `substitutions`."""
    text = COMMANDS[name][0]
    for var, value in substitutions.items():
        text = text.replace("${" + var + "}", value)
    words = shlex.split(text.replace("\\\n", " "))
    script = words[1].rsplit("/", 1)[-1]
    return MODULES[script], words[2:]
