package qupath.lib.gui.viewer;

import java.awt.Shape;
import java.awt.image.BufferedImage;
import qupath.lib.images.ImageData;
import qupath.lib.images.servers.ImageServer;
import qupath.lib.objects.PathObject;
import qupath.lib.objects.hierarchy.PathObjectHierarchy;
import qupath.lib.roi.interfaces.ROI;

/** Stand-in: qupath-gui-fx QuPathViewer (0.5/0.6). */
public class QuPathViewer {
    public Shape getDisplayedRegionShape() { throw new UnsupportedOperationException("compile-only stand-in"); }
    public double getDownsampleFactor() { throw new UnsupportedOperationException("compile-only stand-in"); }
    public ImageServer<BufferedImage> getServer() { throw new UnsupportedOperationException("compile-only stand-in"); }
    public ImageData<BufferedImage> getImageData() { throw new UnsupportedOperationException("compile-only stand-in"); }
    public PathObjectHierarchy getHierarchy() { throw new UnsupportedOperationException("compile-only stand-in"); }
    public int getZPosition() { throw new UnsupportedOperationException("compile-only stand-in"); }
    public int getTPosition() { throw new UnsupportedOperationException("compile-only stand-in"); }
    public void centerROI(ROI roi) { throw new UnsupportedOperationException("compile-only stand-in"); }
    public PathObject getSelectedObject() { throw new UnsupportedOperationException("compile-only stand-in"); }
    public void setSelectedObject(PathObject pathObject) { throw new UnsupportedOperationException("compile-only stand-in"); }
}
