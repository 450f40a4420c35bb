package qupath.lib.roi.interfaces;

/** Stand-in: qupath-core ROI. */
public interface ROI {
    double getBoundsX();
    double getBoundsY();
    double getBoundsWidth();
    double getBoundsHeight();
}
